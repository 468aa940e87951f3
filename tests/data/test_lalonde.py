"""Lalonde-Efros ``onlineDb`` parser and the ``lalonde`` source format (tiny generated DB)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from harmonykit.data.lalonde import (
    is_lalonde,
    lalonde_root,
    normalise_category,
    read_object_mask,
    scan_lalonde,
    split_of,
)
from harmonykit.data.sources import SourceError, detect_format, open_source, scan_source
from harmonykit.errors import ImageReadError

SE = "spatial_envelope_256x256_static_8outdoorcategories"
SHARED_BG = f"{SE}/tallbuilding_art1474.jpg"  # image_100005, image_100006 and composite image_000020


def test_scan_parses_photos_and_composites(lalonde_db, lalonde_spec):
    db = scan_lalonde(lalonde_db)
    assert db.root == lalonde_db.resolve() and db.problems == []
    assert [e.id for e in db.entries] == sorted({**lalonde_spec.photos, **lalonde_spec.composites})
    by_id = {e.id: e for e in db.entries}
    car = by_id["image_100003"]
    assert (car.name, car.category, car.generated) == ("carLeft", "car", False)
    assert car.background == car.object_source == "static_street_boston/img_0003.jpg"
    assert car.image_path == db.root / "Images" / "image_100003.jpg"
    assert car.mask_path == db.root / "Annotation" / "masks" / "image_100003.mat"
    comp = by_id["image_000020"]
    assert comp.generated and comp.category == "tree" and comp.name == "trees"
    assert comp.background == SHARED_BG and comp.object_source == f"{SE}/forest_nat101.jpg"
    assert by_id["image_100005"].background == by_id["image_100006"].background == SHARED_BG
    assert sum(not e.generated for e in db.entries) == len(lalonde_spec.photos)


def test_root_detection_at_and_above_onlinedb(lalonde_db, tmp_path):
    assert lalonde_root(lalonde_db) == lalonde_db and lalonde_root(lalonde_db.parent) == lalonde_db
    assert is_lalonde(lalonde_db.parent) and not is_lalonde(tmp_path / "nothing")
    assert detect_format(lalonde_db) == detect_format(lalonde_db.parent) == "lalonde"
    assert [e.id for e in scan_lalonde(lalonde_db.parent).entries] == [e.id for e in scan_lalonde(lalonde_db).entries]
    with pytest.raises(ImageReadError, match="not a Lalonde-Efros onlineDb"):
        scan_lalonde(tmp_path)


def test_problems_malformed_xml_and_missing_mask(make_lalonde_db):
    db_path = make_lalonde_db(malformed_xml=True, missing_mask=True, wrong_size_mask=True)
    db = scan_lalonde(db_path)
    probs = {p.id: p for p in db.problems}
    assert sorted(probs) == ["image_100011", "image_100012"]
    assert probs["image_100011"].path.name == "image_100011.xml" and "malformed annotation XML" in probs["image_100011"].reason
    assert probs["image_100012"].path.name == "image_100012.mat" and "does not exist" in probs["image_100012"].reason
    assert probs["image_100012"].background == f"{SE}/opencountry_b2.jpg" and probs["image_100012"].generated is False
    # the wrong-size mask is an entry: its size is only known when it is read
    wrong = next(e for e in db.entries if e.id == "image_100013")
    with pytest.raises(ImageReadError, match=r"objMask is 40x32, image is 64x64") as err:
        read_object_mask(wrong.mask_path, size=(64, 64))
    assert err.value.path.endswith("image_100013.mat")
    assert read_object_mask(wrong.mask_path).shape == (32, 40)  # no size: no check


def test_problems_of_composites_and_other_split_are_not_items_problems(make_lalonde_db):
    db_path = make_lalonde_db(missing_mask=True, malformed_xml=True)
    (db_path / "Annotation" / "masks" / "image_000021.mat").unlink()  # a composite's mask
    side = split_of(f"{SE}/opencountry_b2.jpg", 0.5)
    other = {"train": "val", "val": "train"}[side]
    mine = {p.id for p in scan_source(db_path, split=side, val_fraction=0.5).problems}
    theirs = {p.id for p in scan_source(db_path, split=other, val_fraction=0.5).problems}
    assert mine == {"image_100011", "image_100012"}  # a malformed XML has no known split: in both
    assert theirs == {"image_100011"}
    assert "image_000021" in {p.id for p in scan_lalonde(db_path).problems}


def test_read_object_mask_values_and_errors(lalonde_db, tmp_path):
    m = read_object_mask(lalonde_db / "Annotation" / "masks" / "image_100005.mat", size=(64, 64))
    assert m.dtype == bool and m[:32].all() and not m[32:].any()  # sky: the top half
    savemat(tmp_path / "empty.mat", {"objMask": np.zeros((4, 4), np.uint8)})
    savemat(tmp_path / "nokey.mat", {"bgMask": np.ones((4, 4), np.uint8)})
    savemat(tmp_path / "cube.mat", {"objMask": np.ones((2, 2, 2), np.uint8)})
    (tmp_path / "junk.mat").write_bytes(b"not a MATLAB file at all")
    for name, msg in (("empty", "empty"), ("nokey", r"no objMask .*bgMask"), ("cube", "2-D"), ("junk", "cannot read")):
        with pytest.raises(ImageReadError, match=msg) as err:
            read_object_mask(tmp_path / f"{name}.mat")
        assert err.value.path.endswith(f"{name}.mat")


@pytest.mark.parametrize(
    "name, category",
    [("trees", "tree"), ("tree", "tree"), ("carLeft", "car"), ("car side", "car"), ("car side az180deg", "car"),
     ("carRear", "car"), ("Sky", "sky"), ("sky", "sky"), ("sea water", "water"), ("water river", "water"),
     ("snowy mountain", "mountain"), ("mountains", "mountain"), ("buildings", "building"), ("people", "person"),
     ("  road ", "road"), ("", "unknown"), ("_", "unknown"), ("skyscraper", "skyscraper")],
)
def test_normalise_category(name, category):
    assert normalise_category(name) == category


def test_split_of_is_deterministic_and_monotonic():
    keys = [f"{SE}/photo_{i}.jpg" for i in range(200)]
    first = [split_of(k, 0.3) for k in keys]
    assert first == [split_of(k, 0.3) for k in keys]  # no state, no dependence on other keys
    assert [split_of(k, 0.3) for k in reversed(keys)] == first[::-1]
    assert 30 <= first.count("val") <= 90  # about 30 %
    for k in keys:  # a photo in val stays in val when the fraction grows
        assert split_of(k, 0.3) == "train" or split_of(k, 0.6) == "val"
    assert {split_of(k, 0.0) for k in keys} == {"train"} and {split_of(k, 1.0) for k in keys} == {"val"}
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="val_fraction"):
            split_of("x/a.jpg", bad)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_photo_and_its_composites_share_a_side(lalonde_db, lalonde_spec, fraction):
    db = scan_lalonde(lalonde_db)
    photos = {e.background: e for e in db.entries if not e.generated}
    sides = {e.id: split_of(e.background, fraction) for e in db.entries}
    assert sides["image_100005"] == sides["image_100006"] == sides["image_000020"]  # one photo
    for comp in (e for e in db.entries if e.generated and e.background in photos):
        assert sides[comp.id] == sides[photos[comp.background].id]
    train = {it.id for it in open_source(lalonde_db, split="train", val_fraction=fraction)} if any(
        s == "train" for i, s in sides.items() if i in lalonde_spec.photos) else set()
    val = {it.id for it in open_source(lalonde_db, split="val", val_fraction=fraction)} if any(
        s == "val" for i, s in sides.items() if i in lalonde_spec.photos) else set()
    assert not train & val and train | val == set(lalonde_spec.photos)
    assert {"image_100005", "image_100006"} <= train or {"image_100005", "image_100006"} <= val


def test_val_fraction_extremes(lalonde_db, lalonde_spec, make_lalonde_db):
    assert {it.id for it in open_source(lalonde_db, split="train", val_fraction=0.0)} == set(lalonde_spec.photos)
    assert {it.id for it in open_source(lalonde_db, split="val", val_fraction=1.0)} == set(lalonde_spec.photos)
    with pytest.raises(SourceError, match="no natural photo in the val split"):
        scan_source(lalonde_db, split="val", val_fraction=0.0)
    with pytest.raises(SourceError, match="no natural photo in the train split"):
        scan_source(lalonde_db, split="train", val_fraction=1.0)
    with pytest.raises(SourceError, match="val_fraction"):
        scan_source(lalonde_db, split="train", val_fraction=1.5)
    # an empty split with problems is a listing (the problems are reported), not an error
    bad = make_lalonde_db(malformed_xml=True)
    listing = scan_source(bad, split="val", val_fraction=0.0)
    assert listing.items == [] and [p.id for p in listing.problems] == ["image_100011"]


def test_scan_source_lalonde_items(lalonde_db, lalonde_spec):
    listing = scan_source(lalonde_db.parent, split="train", val_fraction=0.0)
    assert listing.format == "lalonde" and listing.split == "train"
    assert listing.image_dir == lalonde_db.resolve() / "Images" and listing.problems == []
    assert [it.id for it in listing.items] == sorted(lalonde_spec.photos)  # composites are not items
    for it in listing.items:
        name, bg = lalonde_spec.photos[it.id][:2]
        assert it.label_path is None and it.object_mask == lalonde_db.resolve() / "Annotation" / "masks" / f"{it.id}.mat"
        assert it.category == normalise_category(name) and it.group == bg
    cats = {it.id: it.category for it in listing.items}
    assert cats["image_100001"] == cats["image_100002"] == "tree" and cats["image_100010"] == "building"
    # default split is val with 10 % of the photos; explicit format works on onlineDb itself
    val = scan_source(lalonde_db, format="lalonde")
    assert val.split == "val" and {it.id for it in val.items} == {
        i for i, p in lalonde_spec.photos.items() if split_of(p[1], 0.1) == "val"}
    with pytest.raises(SourceError, match="--labels is not used with lalonde"):
        scan_source(lalonde_db, split="train", labels=lalonde_db)
    with pytest.raises(SourceError, match="not a Lalonde-Efros"):
        scan_source(lalonde_db / "Images", format="lalonde", split="train")
