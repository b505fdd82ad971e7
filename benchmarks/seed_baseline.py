"""The seed's code as the blog post wrote it: the baseline that benchmarks/speed.py beats.

Networks, training loop and scoring are transcribed from ../shared/seed (translated
comments dropped, the CSV reading replaced by arrays handed in). Its defects are kept on
purpose, since they are what is being measured against: no eval(), the D step
back-propagating into G and E, transforms redone every epoch, scoring in batches of 5.
Do not import this from the product.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode


class Generator(nn.Module):
    def __init__(self):
        super().__init__()

        def CBA(i, o, kernel_size=4, stride=2, padding=1, activation=nn.ReLU(inplace=True), bn=True):
            seq = [nn.ConvTranspose2d(i, o, kernel_size=kernel_size, stride=stride, padding=padding)]
            if bn:
                seq += [nn.BatchNorm2d(o)]
            seq += [activation]
            return nn.Sequential(*seq)

        seq = [CBA(20, 64 * 8, stride=1, padding=0), CBA(64 * 8, 64 * 4), CBA(64 * 4, 64 * 2), CBA(64 * 2, 64)]
        seq += [CBA(64, 1, activation=nn.Tanh(), bn=False)]
        self.generator_network = nn.Sequential(*seq)

    def forward(self, z):
        return self.generator_network(z)


def _cba(i, o, kernel_size=4, stride=2, padding=1):
    return nn.Sequential(
        nn.Conv2d(i, o, kernel_size=kernel_size, stride=stride, padding=padding),
        nn.BatchNorm2d(o),
        nn.LeakyReLU(0.1, inplace=True),
    )


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        seq = [_cba(1, 64), _cba(64, 128), _cba(128, 256), _cba(256, 512), nn.Conv2d(512, 512, kernel_size=4, stride=1)]
        self.feature_network = nn.Sequential(*seq)
        self.embedding_network = nn.Linear(512, 20)

    def forward(self, x):
        return self.embedding_network(self.feature_network(x).view(-1, 512))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        seq = [_cba(1, 64), _cba(64, 128), _cba(128, 256), _cba(256, 512), nn.Conv2d(512, 512, kernel_size=4, stride=1)]
        self.feature_network = nn.Sequential(*seq)
        self.latent_network = nn.Sequential(nn.Linear(20, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.1, inplace=True))
        self.critic_network = nn.Linear(1024, 1)

    def forward(self, x, z):
        feature = self.feature_network(x)
        feature = feature.view(feature.size(0), -1)
        latent = self.latent_network(z)
        return self.critic_network(torch.cat([feature, latent], dim=1)), feature


class ImageDataSet(Dataset):
    def __init__(self, data):
        self.images = data[:, :, :, None]
        self.transform = transforms.Compose(
            [
                transforms.ToTensor(),
                transforms.Resize(64, interpolation=InterpolationMode.BICUBIC),
                transforms.Normalize((0.1307,), (0.3081,)),
            ]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return self.transform(self.images[idx])


def train(images_28: np.ndarray, epochs: int, device: str = "cpu", seed: int = 0, batch_size: int = 128):
    """The seed's loop. ``images_28``: float32 (N, 28, 28) with values 0–255. Returns (G, E, D, seconds)."""
    torch.manual_seed(seed)
    loader = DataLoader(ImageDataSet(images_28), batch_size=batch_size, shuffle=True)
    G, D, E = Generator().to(device), Discriminator().to(device), Encoder().to(device)
    G.train(), D.train(), E.train()
    optimizerG = torch.optim.Adam(G.parameters(), lr=0.0001, betas=(0.0, 0.9))
    optimizerD = torch.optim.Adam(D.parameters(), lr=0.0001, betas=(0.0, 0.9))
    optimizerE = torch.optim.Adam(E.parameters(), lr=0.0004, betas=(0.0, 0.9))
    criterion = nn.BCEWithLogitsLoss(reduction="mean")
    start = time.perf_counter()
    for _epoch in range(epochs):
        for images in loader:
            images = images.to(device)
            label_real = torch.full((images.size(0),), 1.0).to(device)
            label_fake = torch.full((images.size(0),), 0.0).to(device)
            z = torch.randn(images.size(0), 20).to(device).view(images.size(0), 20, 1, 1).to(device)
            fake_images = G(z)
            z_real = E(images)
            d_out_real, _ = D(images, z_real)
            d_out_fake, _ = D(fake_images, z.view(images.size(0), 20))
            d_loss = criterion(d_out_real.view(-1), label_real) + criterion(d_out_fake.view(-1), label_fake)
            optimizerD.zero_grad()
            d_loss.backward()
            optimizerD.step()

            z = torch.randn(images.size(0), 20).to(device).view(images.size(0), 20, 1, 1).to(device)
            fake_images = G(z)
            d_out_fake, _ = D(fake_images, z.view(images.size(0), 20))
            g_loss = criterion(d_out_fake.view(-1), label_real)
            optimizerG.zero_grad()
            g_loss.backward()
            optimizerG.step()

            z_real = E(images)
            d_out_real, _ = D(images, z_real)
            e_loss = criterion(d_out_real.view(-1), label_fake)
            optimizerE.zero_grad()
            e_loss.backward()
            optimizerE.step()
    return G, E, D, time.perf_counter() - start


def anomaly_score(input_image, fake_image, z_real, D):
    residual_loss = torch.sum(torch.abs(input_image - fake_image), (1, 2, 3))
    _, real_feature = D(input_image, z_real)
    _, fake_feature = D(fake_image, z_real)
    discrimination_loss = torch.sum(torch.abs(real_feature - fake_feature), (1))
    return 0.9 * residual_loss + 0.1 * discrimination_loss


def score(G, E, D, images_28: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, float]:
    """The seed's scoring over a whole set: batches of 5, training mode, autograd on."""
    loader = DataLoader(ImageDataSet(images_28), batch_size=5, shuffle=False)
    start = time.perf_counter()
    out = []
    for input_images in loader:
        input_images = input_images.to(device)
        z_real = E(input_images)
        fake_images = G(z_real.view(input_images.size(0), 20, 1, 1))
        out.append(anomaly_score(input_images, fake_images, z_real, D).cpu().detach().numpy())
    return np.concatenate(out), time.perf_counter() - start
