"""Homework 5's corpus: real students' bugs, each with the graded cells it must fail, and correct variants.

Each case edits the solution notebook's solution cells (``(cell, old, new)``). ``lost`` follows the
notebook's credit rule: the MNIST training test does not charge again a bug in LeNet5,
train_one_epoch or random_shift.
"""
from __future__ import annotations

try:
    from corpus.hw45_inprocess import Case
except ImportError:  # run as a script from benchmarks/
    from hw45_inprocess import Case

HW = "hw5_torch_cnn"
DEVICE, LENET, BLOCK, SHIFT = "test_device", "test_lenet5", "test_residual_block", "test_random_shift"
LOOP, EVAL, MNIST = "test_train_one_epoch", "test_evaluate", "test_mnist_training"
POINTS = {DEVICE: 1, LENET: 2, BLOCK: 3, SHIFT: 2, LOOP: 2, EVAL: 1, MNIST: 3}
SLOW = (MNIST,)  # trains LeNet-5: deterministic, left out of the escape-rate runs

MOVE_IN_LOOP = "        x, y = x.to(device), y.to(device)\n        if augment is not None:\n"
MOVE_IN_EVAL = "            x, y = x.to(device), y.to(device)\n            logits = model(x)\n"
SHORTCUT_IF = "        if stride != 1 or in_channels != out_channels:\n"
OFFSETS = "    offsets = torch.randint(0, 2 * max_shift + 1, (N, 2), generator=generator)\n"

WRONG = [
    Case("device_always_cpu", (("get_device", "    if torch.cuda.is_available():\n", "    if False:\n"),
                               ("get_device", "    elif getattr(torch.backends, \"mps\", None) is not None and "
                                              "torch.backends.mps.is_available():\n", "    elif False:\n")), (DEVICE,),
         "always returns the CPU"),
    Case("device_mps_before_cuda", (("get_device", "    if torch.cuda.is_available():\n        device = torch.device(\"cuda\")\n"
                                     "    elif getattr(torch.backends, \"mps\", None) is not None and "
                                     "torch.backends.mps.is_available():\n        device = torch.device(\"mps\")\n",
                                     "    if torch.backends.mps.is_available():\n        device = torch.device(\"mps\")\n"
                                     "    elif torch.cuda.is_available():\n        device = torch.device(\"cuda\")\n"),),
         (DEVICE,), "prefers MPS to CUDA"),
    Case("lenet_softmax_output", (("lenet5", "        return self.fc3(x)\n", "        return F.softmax(self.fc3(x), dim=1)\n"),),
         (LENET,), "returns probabilities instead of logits"),
    Case("lenet_no_padding", (("lenet5", "nn.Conv2d(1, 6, 5, padding=2)", "nn.Conv2d(1, 6, 5)"),
                              ("lenet5", "nn.Linear(16 * 5 * 5, 120)", "nn.Linear(16 * 4 * 4, 120)")), (LENET,),
         "forgets conv1's padding (and shrinks fc1 to fit)"),
    Case("lenet_ten_classes_always", (("lenet5", "nn.Linear(84, num_classes)", "nn.Linear(84, 10)"),), (LENET,),
         "ignores num_classes"),
    Case("lenet_relu_missing", (("lenet5", "        x = F.relu(self.fc2(x))\n", "        x = self.fc2(x)\n"),), (LENET,),
         "forgets the ReLU after fc2"),
    Case("block_projection_only_when_strided", (("residual_block", SHORTCUT_IF, "        if stride != 1:\n"),), (BLOCK,),
         "adds the projection shortcut only when the stride is not 1"),
    Case("block_without_skip", (("residual_block", "        return F.relu(out + self.shortcut(x))\n",
                                 "        return F.relu(out)\n"),), (BLOCK,), "no skip connection"),
    Case("block_relu_before_add", (("residual_block", "        return F.relu(out + self.shortcut(x))\n",
                                    "        return F.relu(out) + self.shortcut(x)\n"),), (BLOCK,),
         "applies the last ReLU before adding the shortcut"),
    Case("block_shortcut_without_bn", (("residual_block", "nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),\n"
                                        "                                          nn.BatchNorm2d(out_channels))",
                                        "nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)"),), (BLOCK,),
         "a projection shortcut without batch norm"),
    Case("block_conv2_strided", (("residual_block", "nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)",
                                  "nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False)"),
                                 ("residual_block", "nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)",
                                  "nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)")), (BLOCK,),
         "downsamples in conv2 instead of conv1"),
    Case("shift_wraps_around", (("random_shift", "    padded = F.pad(x, (max_shift,) * 4)\n",
                                 "    padded = torch.cat([x[..., -max_shift:, :], x, x[..., :max_shift, :]], dim=2)\n"
                                 "    padded = torch.cat([padded[..., -max_shift:], padded, padded[..., :max_shift]], dim=3)\n"),),
         (SHIFT,), "wraps pixels around (as torch.roll) instead of letting zeros in"),
    Case("shift_one_offset_for_the_batch", (("random_shift", OFFSETS,
                                             "    offsets = torch.randint(0, 2 * max_shift + 1, (1, 2), generator=generator)"
                                             ".expand(N, 2)\n"),), (SHIFT,), "one offset for the whole batch"),
    Case("shift_axes_swapped", (("random_shift", "    rows = offsets[:, 0, None] + torch.arange(H)  # (N, H)\n"
                                 "    cols = offsets[:, 1, None] + torch.arange(W)  # (N, W)\n",
                                 "    rows = offsets[:, 1, None] + torch.arange(H)\n    cols = offsets[:, 0, None] + torch.arange(W)\n"),),
         (SHIFT,), "uses the left offset for the rows and the top one for the columns"),
    Case("loop_batches_not_moved", (("loops", MOVE_IN_LOOP, "        if augment is not None:\n"),), (LOOP,),
         "never moves the batches to the device"),
    Case("loop_no_zero_grad", (("loops", "        optimizer.zero_grad()\n", ""),), (LOOP,), "never clears the gradients"),
    Case("loop_mean_of_batch_means", (("loops", "        total += loss.item() * len(y)\n        count += len(y)\n",
                                       "        total += loss.item()\n        count += 1\n"),), (LOOP,),
         "averages the batch losses without weighting them by size"),
    Case("loop_train_mode_forgotten", (("loops", "    model.train()\n    total, count = 0.0, 0\n", "    total, count = 0.0, 0\n"),),
         (LOOP,), "never calls model.train()"),
    Case("loop_augment_ignored", (("loops", "        if augment is not None:\n            x = augment(x)\n", ""),), (LOOP,),
         "never applies augment"),
    Case("evaluate_train_mode", (("loops", "    model.eval()\n", ""),), (EVAL,), "evaluates in training mode"),
    Case("evaluate_mean_of_batch_accuracies", (
        ("loops", "    loss_sum, correct, count = 0.0, 0, 0\n", "    loss_sum, correct, count, accs = 0.0, 0, 0, []\n"),
        ("loops", "            correct += (logits.argmax(1) == y).sum().item()\n",
         "            accs.append((logits.argmax(1) == y).float().mean().item())\n"),
        ("loops", "    return loss_sum / count, correct / count\n", "    return loss_sum / count, sum(accs) / len(accs)\n")),
         (EVAL,), "averages the batch accuracies without weighting them by size"),
    Case("evaluate_batches_not_moved", (("loops", MOVE_IN_EVAL, "            logits = model(x)\n"),), (EVAL,),
         "never moves the batches to the device"),
    Case("mnist_one_short_epoch", (("train_mnist", "    for epoch in range(epochs):\n", "    for epoch in range(1):\n"),
                                   ("train_mnist", "lr=2e-3", "lr=1e-4")), (MNIST,),
         "trains too little to reach the target"),
]

CORRECT = [
    Case("idioms_no_grad_decorator_foreach_adam", (
        ("loops", "def evaluate(model, loader, device):\n", "@torch.no_grad()\ndef evaluate(model, loader, device):\n"),
        ("train_mnist", "torch.optim.Adam(model.parameters(), lr=2e-3)",
         "torch.optim.Adam(model.parameters(), lr=2e-3, foreach=True)"),
        ("loops", "        total += loss.item() * len(y)\n", "        total += float(loss) * y.shape[0]\n"),
        ("loops", MOVE_IN_LOOP, "        x, y = x.to(device, non_blocking=True), y.to(device=device)\n"
                                "        if augment is not None:\n")), (),
     "@torch.no_grad() on evaluate, Adam(foreach=True), float(loss), non_blocking"),
    Case("modules_named_otherwise", (
        ("residual_block", "        self.shortcut = nn.Identity()\n" + SHORTCUT_IF +
         "            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),\n"
         "                                          nn.BatchNorm2d(out_channels))\n",
         "        self.project = stride != 1 or in_channels != out_channels\n        if self.project:\n"
         "            self.proj_conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)\n"
         "            self.proj_bn = nn.BatchNorm2d(out_channels)\n"),
        ("residual_block", "        return F.relu(out + self.shortcut(x))\n",
         "        skip = self.proj_bn(self.proj_conv(x)) if self.project else x\n        return torch.relu(out + skip)\n"),
        ("get_device", "    if torch.cuda.is_available():\n        device = torch.device(\"cuda\")\n"
                       "    elif getattr(torch.backends, \"mps\", None) is not None and "
                       "torch.backends.mps.is_available():\n        device = torch.device(\"mps\")\n"
                       "    else:\n        device = torch.device(\"cpu\")\n",
         "    device = torch.device(\"cuda\" if torch.cuda.is_available() else\n"
         "                          \"mps\" if torch.backends.mps.is_available() else \"cpu\")\n")), (),
     "a shortcut as two attributes, torch.relu, a one-line get_device"),
    Case("shift_loop_over_images", (
        ("random_shift", "    rows = offsets[:, 0, None] + torch.arange(H)  # (N, H)\n",
         "    return torch.stack([padded[i, :, t:t + H, s:s + W] for i, (t, s) in enumerate(offsets.tolist())])\n"),), (),
     "a loop over the images instead of advanced indexing"),
    Case("lenet_sequential", (
        ("lenet5", "        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)\n        self.conv2 = nn.Conv2d(6, 16, 5)\n",
         "        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),\n"
         "                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())\n"),
        ("lenet5", "        x = F.max_pool2d(F.relu(self.conv1(x)), 2)\n        x = F.max_pool2d(F.relu(self.conv2(x)), 2)\n"
                   "        x = torch.flatten(x, 1)\n", "        x = self.features(x)\n")), (),
     "LeNet-5's convolutions in an nn.Sequential"),
]
