"""Draw resources/icon.png, the window icon: a part under a magnifier with a red defect mark."""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
draw = ImageDraw.Draw(image)
draw.rounded_rectangle([16, 16, 240, 240], radius=40, fill=(38, 70, 120, 255))
for i in range(4):
    for j in range(4):
        x, y = 40 + i * 46, 40 + j * 46
        draw.rectangle([x, y, x + 36, y + 36], fill=(200, 215, 235, 255))
draw.rectangle([132, 86, 168, 122], fill=(230, 40, 40, 255))
draw.ellipse([92, 48, 208, 164], outline=(255, 255, 255, 255), width=14)
draw.line([196, 152, 236, 212], fill=(255, 255, 255, 255), width=22)
out = Path(__file__).resolve().parent.parent / "resources" / "icon.png"
image.save(out)
print(out)
