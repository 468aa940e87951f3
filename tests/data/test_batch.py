"""Typed pairs and batches: PairItem / PairError / PairBatch and collate_pairs."""

from __future__ import annotations

import pytest
import torch

from harmonykit.data.batch import PairBatch, PairError, PairItem, collate_pairs


def _item(i: int, size: int = 4, regions: bool = False, onthefly: bool = False) -> PairItem:
    g = torch.Generator().manual_seed(i)
    return PairItem(
        composite=torch.rand(3, size, size, generator=g), real=torch.rand(3, size, size, generator=g),
        mask=(torch.rand(1, size, size, generator=g) > 0.5).float(), id=f"s{i}", subset="demo",
        regions=torch.rand(3, size, size, generator=g) if regions else None,
        index=i if onthefly else None, skipped=0 if onthefly else None,
    )


def test_collate_stacks_the_fields_in_order():
    items = [_item(i, regions=True, onthefly=True) for i in range(3)]
    b = collate_pairs(items)
    assert isinstance(b, PairBatch) and len(b) == 3
    assert b.composite.shape == (3, 3, 4, 4) and b.mask.shape == (3, 1, 4, 4) and b.regions.shape == (3, 3, 4, 4)
    assert b.ids == ["s0", "s1", "s2"] and b.subsets == ["demo"] * 3 and b.errors == []
    assert b.index.tolist() == [0, 1, 2] and b.index.dtype == torch.int64 and b.skipped.tolist() == [0, 0, 0]
    for k, it in enumerate(items):
        assert torch.equal(b.composite[k], it.composite) and torch.equal(b.real[k], it.real)
        assert torch.equal(b.mask[k], it.mask) and torch.equal(b.regions[k], it.regions)
    plain = collate_pairs([_item(0)])  # fixed pairs: no regions, index or skipped
    assert plain.regions is None and plain.index is None and plain.skipped is None


def test_errors_are_left_out_and_an_all_failed_batch_is_empty():
    bad = PairError(id="x", subset="demo", error="x.png: file does not exist")
    b = collate_pairs([_item(0), bad, _item(1)])
    assert b.ids == ["s0", "s1"] and b.composite.shape[0] == 2 and b.errors == [bad]
    empty = collate_pairs([bad])
    assert len(empty) == 0 and empty.ids == [] and empty.errors == [bad]
    assert empty.composite.shape[0] == empty.real.shape[0] == empty.mask.shape[0] == 0


def test_collate_refuses_mixed_sizes_and_mixed_fields():
    with pytest.raises(ValueError, match="batch_size=1"):
        collate_pairs([_item(0, size=4), _item(1, size=6)])
    with pytest.raises(ValueError, match="with and without 'regions'"):
        collate_pairs([_item(0, regions=True), _item(1)])
    assert collate_pairs([_item(0, size=6)]).composite.shape == (1, 3, 6, 6)  # any size alone


def test_to_moves_every_tensor_and_keeps_the_rest():
    b = collate_pairs([_item(0, regions=True, onthefly=True), _item(1, regions=True, onthefly=True)])
    moved = b.to("meta")
    for name in ("composite", "real", "mask", "regions", "index", "skipped"):
        assert getattr(moved, name).device.type == "meta", name
        assert getattr(b, name).device.type == "cpu", name  # a copy: the batch itself stays
    assert moved.ids == b.ids and moved.subsets == b.subsets and moved.errors == b.errors
    same = b.to("cpu", non_blocking=True)
    assert same.composite is b.composite  # already there: nothing copied


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_dataloader_pins_a_pair_batch():
    loader = torch.utils.data.DataLoader([_item(i) for i in range(4)], batch_size=2, collate_fn=collate_pairs,
                                         pin_memory=True)
    b = next(iter(loader))
    assert isinstance(b, PairBatch) and b.composite.is_pinned() and b.mask.is_pinned()
    assert b.to("cuda", non_blocking=True).composite.device.type == "cuda"


def test_items_read_as_mappings_for_the_default_collate():
    it = _item(0, onthefly=True)
    assert it["composite"] is it.composite and "regions" not in it and set(it) == {
        "composite", "real", "mask", "id", "subset", "index", "skipped"}
    with pytest.raises(KeyError):
        it["regions"]
    default = torch.utils.data.default_collate([it, _item(1, onthefly=True)])
    assert isinstance(default, dict) and default["composite"].shape == (2, 3, 4, 4) and default["id"] == ["s0", "s1"]
    err = PairError(id="x", subset=None, error="broken")
    assert dict(err) == {"id": "x", "error": "broken"}


def test_dataloader_workers_give_pair_batches():
    items = [_item(i, onthefly=True) for i in range(4)]
    loader = torch.utils.data.DataLoader(items, batch_size=2, num_workers=2, collate_fn=collate_pairs)
    batches = list(loader)
    assert [b.ids for b in batches] == [["s0", "s1"], ["s2", "s3"]]
    assert torch.equal(batches[1].composite[0], items[2].composite)
