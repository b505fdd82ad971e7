"""EGBAD Inspector's window. It only draws and asks: every piece of training, scoring and
export logic lives in `egbad_core` and runs in worker threads."""
