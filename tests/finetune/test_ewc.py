"""EWC: the penalty's shape, online accumulation, persistence, the Fisher estimate (on a LoRA adapter
too), and less forgetting on a two-task toy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from finetune.train.ewc import EWC, FisherOptions, fisher_diagonal, normalize_fisher, trainable_parameters


def _params(**tensors: Tensor) -> dict[str, Tensor]:
    return {name: t.clone().requires_grad_(True) for name, t in tensors.items()}


def test_penalty_is_zero_at_the_anchor_and_quadratic_in_distance() -> None:
    theta = _params(w=torch.tensor([1.0, -2.0, 3.0]), b=torch.tensor([0.5]))
    fisher = {"w": torch.tensor([1.0, 2.0, 0.0]), "b": torch.tensor([4.0])}
    ewc = EWC(lam=3.0)
    assert float(ewc.penalty(theta).detach()) == 0.0  # nothing consolidated yet
    ewc.consolidate(theta, fisher)
    assert float(ewc.penalty(theta).detach()) == 0.0
    step = {"w": torch.tensor([0.1, 0.1, 5.0]), "b": torch.tensor([-0.1])}
    values = []
    for scale in (1.0, 2.0, 3.0):
        moved = {n: (theta[n] + scale * step[n]).detach().requires_grad_(True) for n in theta}
        values.append(float(ewc.penalty(moved).detach()))
    # λ/2 · Σ F d² = 1.5 · (0.01 + 0.02 + 0 + 0.04) = 0.105 (F = 0 makes the third weight free).
    assert values[0] == pytest.approx(0.105)
    assert values[1] == pytest.approx(4 * values[0]) and values[2] == pytest.approx(9 * values[0])


def test_penalty_gradient_pulls_back_to_the_anchor() -> None:
    theta = _params(w=torch.zeros(2))
    ewc = EWC(lam=2.0)
    ewc.consolidate(theta, {"w": torch.tensor([1.0, 3.0])})
    moved = {"w": torch.tensor([1.0, 1.0], requires_grad=True)}
    ewc.penalty(moved).backward()
    torch.testing.assert_close(moved["w"].grad, torch.tensor([2.0, 6.0]))  # λ F (θ − θ*)


def test_online_accumulation_decays_old_fisher_and_moves_the_anchor() -> None:
    ewc = EWC(lam=1.0, gamma=0.5)
    first = _params(w=torch.tensor([1.0, 1.0]))
    ewc.consolidate(first, {"w": torch.tensor([2.0, 4.0])})
    first["w"].data += 10  # the optimizer's in-place step must not drag the anchor along
    torch.testing.assert_close(ewc.anchors["w"], torch.tensor([1.0, 1.0]))
    second = _params(w=torch.tensor([3.0, 0.0]), v=torch.tensor([1.0]))
    ewc.consolidate(second, {"w": torch.tensor([1.0, 0.0]), "v": torch.tensor([6.0])})
    torch.testing.assert_close(ewc.fisher["w"], torch.tensor([0.5 * 2 + 1, 0.5 * 4 + 0]))
    torch.testing.assert_close(ewc.fisher["v"], torch.tensor([6.0]))
    torch.testing.assert_close(ewc.anchors["w"], torch.tensor([3.0, 0.0]))
    assert ewc.consolidations == 2


def test_state_round_trip_through_safetensors(tmp_path: Path) -> None:
    ewc = EWC(lam=0.7, gamma=0.9)
    theta = _params(**{"base.layers.0.q_proj.lora_A.default.weight": torch.randn(4, 8)})
    ewc.consolidate(theta, {n: torch.rand_like(t) for n, t in theta.items()})
    ewc.save(tmp_path / "ewc.safetensors")
    loaded = EWC.load(tmp_path / "ewc.safetensors")
    assert (loaded.lam, loaded.gamma, loaded.consolidations) == (0.7, 0.9, 1)
    moved = {n: t + 0.3 for n, t in theta.items()}
    torch.testing.assert_close(loaded.penalty(moved), ewc.penalty(moved))
    again = EWC()
    again.load_state_dict(ewc.state_dict())
    torch.testing.assert_close(again.fisher, ewc.fisher)


# -- the Fisher estimate ---------------------------------------------------------------------------------


def _mse(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_fisher_is_the_mean_squared_per_example_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    xs, ys = torch.randn(5, 3), torch.randn(5, 1)
    batches = [(xs[i : i + 1], ys[i : i + 1]) for i in range(5)]
    params = trainable_parameters(model)
    fisher = fisher_diagonal(model, params, batches, _mse, FisherOptions(normalize="none"))
    with torch.no_grad():
        residual = model(xs) - ys  # d/dw (w·x + b − y)² = 2 r x
    torch.testing.assert_close(fisher["weight"], (2 * residual * xs).pow(2).mean(0, keepdim=True))
    torch.testing.assert_close(fisher["bias"], (2 * residual).pow(2).mean(0))
    capped = fisher_diagonal(model, params, batches, _mse, FisherOptions(max_batches=2, normalize="none"))
    torch.testing.assert_close(capped["bias"], (2 * residual[:2]).pow(2).mean(0))


def test_normalisation_uses_one_scale_for_all_tensors() -> None:
    raw = {"a": torch.tensor([1.0, 3.0]), "b": torch.tensor([8.0])}
    mean = normalize_fisher(raw, "mean")
    assert float(torch.cat(list(mean.values())).mean()) == pytest.approx(1.0)
    assert float(mean["b"][0] / mean["a"][0]) == pytest.approx(8.0)  # relative importance kept
    assert float(torch.cat(list(normalize_fisher(raw, "max").values())).max()) == 1.0
    assert normalize_fisher(raw, "none")["b"] is raw["b"]


def test_fisher_leaves_the_models_gradients_and_mode_alone() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1)).train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    batches = [(torch.randn(1, 3), torch.randn(1, 1)) for _ in range(3)]
    fisher_diagonal(model, trainable_parameters(model), batches, _mse)
    assert model.training
    assert all(bool((p.grad == 7.0).all()) for p in model.parameters())


def test_frozen_parameters_have_no_fisher() -> None:
    model = nn.Linear(2, 1)
    model.weight.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        fisher_diagonal(model, dict(model.named_parameters()), [], _mse)
    assert list(trainable_parameters(model)) == ["bias"]


def _tiny_lora_llama() -> nn.Module:
    # Imported here: the spawned ranks of the distributed test import this module and need neither.
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    return get_peft_model(LlamaForCausalLM(config), lora)


def _lm_loss(model: nn.Module, batch: Tensor) -> Tensor:
    return model(input_ids=batch, labels=batch).loss


def test_fresh_lora_a_has_zero_fisher_until_the_adapter_trained(caplog) -> None:
    model = _tiny_lora_llama()
    params = trainable_parameters(model)
    assert params and all("lora_" in name for name in params)  # the frozen base is not included
    batches = [torch.randint(0, 64, (1, 12)) for _ in range(4)]
    fresh = fisher_diagonal(model, params, batches, _lm_loss, FisherOptions(normalize="none"))
    assert all(float(f.sum()) == 0.0 for n, f in fresh.items() if "lora_A" in n)
    assert all(float(f.sum()) > 0.0 for n, f in fresh.items() if "lora_B" in n)
    assert "zero Fisher" in caplog.text
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2)
    for batch in batches * 3:
        optimizer.zero_grad()
        _lm_loss(model, batch).backward()
        optimizer.step()
    trained = fisher_diagonal(model, params, batches, _lm_loss)
    assert all(float(f.sum()) > 0.0 for f in trained.values())


# -- forgetting on a two-task toy ------------------------------------------------------------------------


def _task(dims: slice, seed: int) -> tuple[Tensor, Tensor]:
    # Each task lives in its own input subspace with its own target, so one network can hold both.
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(256, 8)
    x[:, dims] = torch.randn(256, dims.stop - dims.start, generator=gen)
    w = torch.randn(8, 1, generator=gen)
    return x, torch.tanh(x @ w) * 2


def _train(model: nn.Module, data: tuple[Tensor, Tensor], steps: int, ewc: EWC | None = None) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    params = trainable_parameters(model)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _mse(model, data)
        if ewc is not None:
            loss = loss + ewc.penalty(params)
        loss.backward()
        optimizer.step()


def test_ewc_reduces_forgetting_of_the_first_task() -> None:
    task_a, task_b = _task(slice(0, 4), seed=1), _task(slice(4, 8), seed=2)
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    _train(base, task_a, 150)
    with torch.no_grad():
        loss_a, loss_b_before = float(_mse(base, task_a)), float(_mse(base, task_b))
    sample = [(task_a[0][i : i + 1], task_a[1][i : i + 1]) for i in range(64)]
    fisher = fisher_diagonal(base, trainable_parameters(base), sample, _mse)

    results = {}
    for lam in (0.0, 10.0):
        model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
        model.load_state_dict(base.state_dict())
        ewc = EWC(lam=lam)
        ewc.consolidate(trainable_parameters(model), fisher)
        _train(model, task_b, 150, ewc)
        with torch.no_grad():
            results[lam] = (float(_mse(model, task_a)) - loss_a, float(_mse(model, task_b)))
    rise_plain, rise_ewc = results[0.0][0], results[10.0][0]
    assert rise_plain > 0.05  # the toy does forget without EWC
    assert rise_ewc < 0.5 * rise_plain
    assert results[10.0][1] < 0.1 * loss_b_before  # and still learns task B


# -- distributed: every rank ends with the Fisher of all shards ------------------------------------------


def _fisher_on_rank(rank: int, world: int, init_file: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same weights on both ranks, as DDP guarantees
        model = nn.Linear(3, 1)
        gen = torch.Generator().manual_seed(1)
        xs, ys = torch.randn(8, 3, generator=gen), torch.randn(8, 1, generator=gen)
        shard = [(xs[i : i + 1], ys[i : i + 1]) for i in range(rank, 8, world)]
        fisher = fisher_diagonal(model, trainable_parameters(model), shard, _mse, FisherOptions(normalize="none"))
        torch.save(fisher, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def test_fisher_is_averaged_across_ranks(tmp_path: Path) -> None:
    out = str(tmp_path / "fisher")
    torch.multiprocessing.spawn(_fisher_on_rank, args=(2, str(tmp_path / "init"), out), nprocs=2)
    ranks = [torch.load(f"{out}.{rank}") for rank in range(2)]
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    gen = torch.Generator().manual_seed(1)
    xs, ys = torch.randn(8, 3, generator=gen), torch.randn(8, 1, generator=gen)
    whole = fisher_diagonal(
        model, trainable_parameters(model), [(xs[i : i + 1], ys[i : i + 1]) for i in range(8)], _mse,
        FisherOptions(normalize="none"),
    )
    for fisher in ranks:
        torch.testing.assert_close(fisher, whole)
