"""Model factory: the torchvision networks of the organizer's kit, and any timm model.

The kit networks are registered with timm (`register_model`), so `timm.create_model` and
`timm.list_models` know them like any other, and `create_model(config, num_classes)` builds a
randomly initialized classifier of any name the same way. Every model it
returns carries `pretrained_cfg["classifier"]`, the state-dict prefix of its head (timm sets it;
the kit networks get it here), which is what `train.load_backbone` leaves out when it moves the
pre-trained weights into the fine-tuning model with a new head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List

import timm
import torch
from timm.models import register_model
from torch import nn

from submission.errors import UserError


@dataclass(frozen=True)
class KitNetwork:
    """A torchvision network built for `num_classes`; `classifier` is its head's prefix."""

    build: Callable[[int], nn.Module]
    classifier: str
    description: str


def reduce_strides(model: nn.Module, count: int) -> List[str]:
    """Set the first `count` stride-2 convolutions (in module order) to stride 1; returns their
    names. A CIFAR variant does this so that a 32 px input keeps enough spatial size."""
    patched = []
    for name, module in model.named_modules():
        if len(patched) == count:
            break
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)
            patched.append(name)
    if len(patched) < count:
        raise ValueError(f"found {len(patched)} stride-2 convolutions, expected {count}")
    return patched


def _cifar_mobilenet_v2(width: float) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        from torchvision.models import mobilenet_v2

        model = mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width)
        # The stem and the first stride-2 block (features.0.0, features.2.conv.1.0): total
        # stride 32 -> 8, so a 32 px crop ends in 4 x 4 features instead of 1 x 1.
        reduce_strides(model, 2)
        return model

    return build


def _resnet18(num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


KIT_NETWORKS: Dict[str, KitNetwork] = {
    "cifar_mobilenetv2_100": KitNetwork(
        _cifar_mobilenet_v2(1.0), "classifier",
        "torchvision MobileNetV2, width 1.0, CIFAR strides (stem and first stage at stride 1)"),
    "cifar_mobilenetv2_050": KitNetwork(
        _cifar_mobilenet_v2(0.5), "classifier",
        "torchvision MobileNetV2, width 0.5, CIFAR strides"),
    "tv_resnet18": KitNetwork(_resnet18, "fc", "torchvision ResNet-18 (the FractalDB code's)"),
}


def _kit_entrypoint(name: str, network: KitNetwork) -> Callable[..., nn.Module]:
    """A timm model entry point for a kit network (what `timm.create_model` calls)."""

    def build(pretrained: bool = False, num_classes: int = 1000, img_size: Any = None,
              **kwargs: Any) -> nn.Module:
        # timm passes its own pretrained_cfg/cache_dir keywords; the ViT shape ones do not fit.
        extra = [key for key in ("patch_size", "depth") if key in kwargs]
        if extra:
            raise UserError(f"model {name!r} is a convolutional network without "
                            f"{' or '.join(extra)}; pass --{extra[0].replace('_', '-')} none")
        if pretrained:
            raise UserError(f"model {name!r} has no pre-trained weights here")
        # channels_last: about 1.4x faster MobileNet training on CPU (and the convnet layout on
        # GPU); the weights and their state dict are the same numbers. Any img_size fits.
        model = network.build(num_classes).to(memory_format=torch.channels_last)
        model.pretrained_cfg = {"classifier": network.classifier, "source": "torchvision"}
        return model

    build.__name__ = build.__qualname__ = name  # timm registers the function by its name
    build.__doc__ = network.description
    return build


for _name, _network in KIT_NETWORKS.items():
    register_model(_kit_entrypoint(_name, _network))


def create_model(config, num_classes: int) -> nn.Module:
    """The config's model (a kit network or any timm name) with a `num_classes` head."""
    if not timm.is_model(config.model):
        raise UserError(f"unknown model {config.model!r}; known: the kit networks "
                        f"{', '.join(KIT_NETWORKS)}, or a timm name such as "
                        f"{', '.join(timm.list_models('vit_tiny*')[:3])} (timm.list_models())")
    kwargs = {"img_size": config.img_size, "patch_size": config.patch_size,
              "depth": config.depth}  # timm drops the None ones: the model's own value
    try:
        return timm.create_model(config.model, pretrained=False, num_classes=num_classes,
                                 **kwargs)
    except TypeError as error:
        given = sorted(k for k, v in kwargs.items() if v is not None)
        raise UserError(f"model {config.model!r} does not take {given} ({error}); use a "
                        f"ViT-style timm model or unset patch_size/depth") from error
