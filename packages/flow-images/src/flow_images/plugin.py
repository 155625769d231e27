"""Hook implementations of flow-images: its networks, FlowTurbo, TARFlow/STARFlow, GS-Jacobi
and the image tasks."""

from __future__ import annotations

from flow_core import Component, hookimpl

FLOW_PLUGIN_API = 1


@hookimpl
def flow_register_flows() -> list[Component]:
    return [
        Component(
            "unet",
            "flow_images.networks.unet:UNetVelocity",
            "small U-Net velocity field v(x, t, label) for images (NCHW)",
        ),
        Component(
            "unet-average",
            "flow_images.networks.unet:UNetAverageVelocity",
            "small U-Net average-velocity field u(x, r, t, label) for MeanFlow/SplitMeanFlow",
        ),
        Component(
            "dit",
            "flow_images.networks.dit:DiTVelocity",
            "small diffusion transformer (patches, adaLN-zero) velocity field (Peebles 2023)",
        ),
        Component(
            "dit-average",
            "flow_images.networks.dit:DiTAverageVelocity",
            "small diffusion transformer average-velocity field u(x, r, t, label)",
        ),
        Component(
            "tarflow",
            "flow_images.tarflow.model:TARFlow",
            "TARFlow: transformer autoregressive flow blocks over patches (Zhai 2024)",
        ),
        Component(
            "starflow",
            "flow_images.starflow.model:STARFlow",
            "STARFlow deep-shallow stack, labels only in the deep block (Gu 2025)",
        ),
    ]


@hookimpl
def flow_register_objectives() -> list[Component]:
    return [
        Component(
            "flowturbo-refiner",
            "flow_images.flowturbo.objective:RefinerObjective",
            "FlowTurbo: train a small velocity refiner against a frozen teacher (Zhao 2024)",
        ),
    ]


@hookimpl
def flow_register_samplers() -> list[Component]:
    return [
        Component(
            "flowturbo",
            "flow_images.flowturbo.sampler:FlowTurboSampler",
            "FlowTurbo: Heun, pseudo-corrector, then refiner steps; compilable (Zhao 2024)",
        ),
        Component(
            "gs-jacobi",
            "flow_images.gsjacobi.sampler:GSJacobiSampler",
            "GS-Jacobi parallel inversion of TARFlow-family flows, CRM and IGM (Liu 2025)",
        ),
    ]


@hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "images.digits",
            "flow_images.tasks.digits:Digits",
            "class-conditional generation of scikit-learn's 8x8 digits, with FD and accuracy",
        ),
        Component(
            "images.patches",
            "flow_images.tasks.patches:Patches",
            "unconditional generation of 32x32 patches of scikit-image's photographs",
        ),
        Component(
            "images.tarflow",
            "flow_images.tasks.tarflow:TARFlowTask",
            "TARFlow normalizing flow on digits (or patches): bits/dim, guided samples, FD",
        ),
        Component(
            "images.starflow",
            "flow_images.tasks.starflow:STARFlowTask",
            "STARFlow in a small autoencoder's latent space, Gaussian guidance, FD",
        ),
        Component(
            "images.restore",
            "flow_images.tasks.restore:Restore",
            "PMRF restoration (denoise, inpaint, 2x SR) vs the MMSE restorer and posterior"
            " sampling (Ohayon 2025)",
        ),
        Component(
            "images.rescale",
            "flow_images.tasks.rescale:Rescale",
            "invertible 2x/4x rescaling of photo patches, optional dual latent (IRN, Xiao 2020)",
        ),
        Component(
            "images.flowar",
            "flow_images.tasks.flowar:FlowAR",
            "FlowAR: scale-wise AR transformer + per-scale flow-matching heads on digits"
            " (Ren 2024)",
        ),
        Component(
            "images.arflow",
            "flow_images.tasks.arflow:ARFlow",
            "ARFlow: causal transformer over same-class noisy sequences, hybrid linear"
            " attention, on digits (Hui 2025)",
        ),
    ]
