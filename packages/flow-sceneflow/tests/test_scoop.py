import numpy as np
import torch

from flow_sceneflow.scoop.losses import chamfer_forward, scoop_loss, smoothness
from flow_sceneflow.scoop.model import ScoopModel, knn
from flow_sceneflow.scoop.refine import refine_flow


def test_model_shapes_confidence_and_plan():
    torch.manual_seed(0)
    model = ScoopModel(neighbours=8, top_k=16)
    pc1, pc2 = torch.randn(2, 64, 3), torch.randn(2, 80, 3)
    flow, confidence = model(pc1, pc2)
    assert flow.shape == (2, 64, 3) and confidence.shape == (2, 64)
    assert bool((confidence >= 0).all()) and bool((confidence <= 1 + 1e-5).all())
    plan, _ = model.transport(pc1, pc2, model.features(pc1), model.features(pc2))
    assert plan.shape == (2, 64, 80) and bool((plan >= 0).all())
    # reconstructions are convex combinations of target points: inside their bounding box
    recon = pc1 + flow
    assert bool((recon <= pc2.amax(1, keepdim=True) + 1e-4).all())


def test_transport_is_masked_beyond_ten_metres():
    model = ScoopModel(neighbours=4, top_k=4)
    pc1 = torch.zeros(1, 8, 3)
    pc2 = torch.cat([torch.zeros(1, 4, 3), torch.full((1, 4, 3), 20.0)], 1)
    plan, _ = model.transport(pc1, pc2, torch.randn(1, 8, 16), torch.randn(1, 8, 16))
    assert torch.all(plan[0, :, 4:] == 0)


def test_losses_on_hand_made_cases():
    pc = torch.randn(1, 50, 3)
    assert float(chamfer_forward(pc, pc)) == 0.0
    assert float(chamfer_forward(pc + torch.tensor([0.0, 0.0, 100.0]), pc)) > 1e3
    graph = knn(pc, 9)
    assert float(smoothness(torch.ones(1, 50, 3), graph)) == 0.0
    assert float(smoothness(torch.randn(1, 50, 3), graph)) > 0.1
    loss, parts = scoop_loss(torch.zeros(1, 50, 3), torch.ones(1, 50), pc, pc, graph)
    assert float(loss) == 0.0 and parts["confidence"] == 1.0


def test_training_lowers_the_self_supervised_loss():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    pc1 = torch.rand(1, 96, 3, generator=generator) * 4
    pc2 = pc1 + torch.tensor([0.3, 0.0, 0.0])
    model = ScoopModel(neighbours=8, top_k=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        flow, confidence = model(pc1, pc2)
        loss, _ = scoop_loss(flow, confidence, pc1, pc2, knn(pc1, 9))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_refinement_recovers_a_translation():
    generator = torch.Generator().manual_seed(1)
    pc1 = torch.rand(300, 3, generator=generator) * 5
    shift = torch.tensor([0.15, -0.1, 0.05])
    pc2 = pc1 + shift
    start = torch.zeros(300, 3)
    refined = refine_flow(
        pc1, pc2, start, torch.ones(300), steps=100, lr=0.02, neighbours=8, chunk=128
    )
    before = (start - shift).norm(dim=1).mean()
    after = (refined - shift).norm(dim=1).mean()
    assert after < 0.3 * before
