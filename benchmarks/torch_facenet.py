"""The same Inception-ResNet-v1 in PyTorch (NCHW), loading tinyconv's FaceNet weights file: the yardstick of
benchmarks/bench_faces.py. Only for benchmarks (torch is never a dependency of tinyconv).

Every 'same' convolution of this network has stride 1 and an odd kernel, so TensorFlow's 'same' rule is the
symmetric padding k // 2; the 'valid' ones have none.
"""
import h5py
import numpy as np
import torch
import torch.nn.functional as TF


class TorchFaceNet(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        self.p = {}
        with h5py.File(path, "r") as f:
            for layer, group in f.items():
                for name, data in group.items():
                    a = np.asarray(data)
                    if name == "kernel" and a.ndim == 4:
                        a = a.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                    self.p[f"{layer}/{name}"] = torch.from_numpy(np.ascontiguousarray(a))
        for i, (k, v) in enumerate(self.p.items()):
            self.register_buffer(f"w{i}", v)

    def conv_bn(self, x, name, stride=1, same=True):
        w = self.p[f"{name}/kernel"]
        padding = (w.shape[2] // 2, w.shape[3] // 2) if same else 0
        x = TF.conv2d(x, w, None, stride, padding)
        x = TF.batch_norm(x, self.p[f"{name}_BatchNorm/moving_mean"], self.p[f"{name}_BatchNorm/moving_variance"],
                          None, self.p[f"{name}_BatchNorm/beta"], False, 0.0, 1e-3)
        return TF.relu(x)

    def up(self, x, name):
        return TF.conv2d(x, self.p[f"{name}/kernel"], self.p[f"{name}/bias"])

    def block35(self, x, i):
        p = f"Block35_{i}"
        b0 = self.conv_bn(x, f"{p}_Branch_0_Conv2d_1x1")
        b1 = self.conv_bn(self.conv_bn(x, f"{p}_Branch_1_Conv2d_0a_1x1"), f"{p}_Branch_1_Conv2d_0b_3x3")
        b2 = self.conv_bn(x, f"{p}_Branch_2_Conv2d_0a_1x1")
        b2 = self.conv_bn(self.conv_bn(b2, f"{p}_Branch_2_Conv2d_0b_3x3"), f"{p}_Branch_2_Conv2d_0c_3x3")
        return TF.relu(x + 0.17 * self.up(torch.cat([b0, b1, b2], 1), f"{p}_Conv2d_1x1"))

    def block17(self, x, i):
        p = f"Block17_{i}"
        b0 = self.conv_bn(x, f"{p}_Branch_0_Conv2d_1x1")
        b1 = self.conv_bn(x, f"{p}_Branch_1_Conv2d_0a_1x1")
        b1 = self.conv_bn(self.conv_bn(b1, f"{p}_Branch_1_Conv2d_0b_1x7"), f"{p}_Branch_1_Conv2d_0c_7x1")
        return TF.relu(x + 0.1 * self.up(torch.cat([b0, b1], 1), f"{p}_Conv2d_1x1"))

    def block8(self, x, i, scale=0.2, activation=True):
        p = f"Block8_{i}"
        b0 = self.conv_bn(x, f"{p}_Branch_0_Conv2d_1x1")
        b1 = self.conv_bn(x, f"{p}_Branch_1_Conv2d_0a_1x1")
        b1 = self.conv_bn(self.conv_bn(b1, f"{p}_Branch_1_Conv2d_0b_1x3"), f"{p}_Branch_1_Conv2d_0c_3x1")
        x = x + scale * self.up(torch.cat([b0, b1], 1), f"{p}_Conv2d_1x1")
        return TF.relu(x) if activation else x

    def forward(self, x):
        """x (N, H, W, 3) NHWC like tinyconv -> (N, 128) before L2 normalisation."""
        x = x.permute(0, 3, 1, 2)
        x = self.conv_bn(x, "Conv2d_1a_3x3", 2, False)
        x = self.conv_bn(x, "Conv2d_2a_3x3", 1, False)
        x = self.conv_bn(x, "Conv2d_2b_3x3")
        x = TF.max_pool2d(x, 3, 2)
        x = self.conv_bn(x, "Conv2d_3b_1x1", 1, False)
        x = self.conv_bn(x, "Conv2d_4a_3x3", 1, False)
        x = self.conv_bn(x, "Conv2d_4b_3x3", 2, False)
        for i in range(1, 6):
            x = self.block35(x, i)
        b0 = self.conv_bn(x, "Mixed_6a_Branch_0_Conv2d_1a_3x3", 2, False)
        b1 = self.conv_bn(self.conv_bn(x, "Mixed_6a_Branch_1_Conv2d_0a_1x1"), "Mixed_6a_Branch_1_Conv2d_0b_3x3")
        b1 = self.conv_bn(b1, "Mixed_6a_Branch_1_Conv2d_1a_3x3", 2, False)
        x = torch.cat([b0, b1, TF.max_pool2d(x, 3, 2)], 1)
        for i in range(1, 11):
            x = self.block17(x, i)
        b0 = self.conv_bn(self.conv_bn(x, "Mixed_7a_Branch_0_Conv2d_0a_1x1"), "Mixed_7a_Branch_0_Conv2d_1a_3x3", 2,
                          False)
        b1 = self.conv_bn(self.conv_bn(x, "Mixed_7a_Branch_1_Conv2d_0a_1x1"), "Mixed_7a_Branch_1_Conv2d_1a_3x3", 2,
                          False)
        b2 = self.conv_bn(self.conv_bn(x, "Mixed_7a_Branch_2_Conv2d_0a_1x1"), "Mixed_7a_Branch_2_Conv2d_0b_3x3")
        b2 = self.conv_bn(b2, "Mixed_7a_Branch_2_Conv2d_1a_3x3", 2, False)
        x = torch.cat([b0, b1, b2, TF.max_pool2d(x, 3, 2)], 1)
        for i in range(1, 6):
            x = self.block8(x, i)
        x = self.block8(x, 6, 1.0, False)
        x = x.mean(dim=(2, 3))
        x = x @ self.p["Bottleneck/kernel"]
        bn = "Bottleneck_BatchNorm"
        return TF.batch_norm(x, self.p[f"{bn}/moving_mean"], self.p[f"{bn}/moving_variance"], None,
                             self.p[f"{bn}/beta"], False, 0.0, 1e-3)
