"""LumosX People From Photo and Pick Person on real group photos (insightface's t1.jpg, six
people; the vectron wheel's players.jpg, 22 faces) with real face models: order, face crops
equal to the Face Encoder's, body regions, garment masks drawn by the test given to their
wearers, the report, and the errors."""
import importlib

import pytest
import standin
import torch

from face_fixtures import VECTRON_PACK, astronaut, insightface_image, vectron_image
from lumosx_core.faces.crop import box_area
from lumosx_core.photos import garments as G
from lumosx_core.photos.people import LARGEST_FIRST, order_faces

INDEX = "index (left to right)"
SQUARE = "square with margin"


@pytest.fixture(scope="module")
def faces(pack):
    return importlib.import_module("ComfyUI_LumosX.nodes.faces")


def people_from(N, photo, **kw):
    kw.setdefault("det_size", 640)
    return N["LumosXPeopleFromPhoto"].execute(photo[None], VECTRON_PACK, **kw)


def centre_x(b):
    return (b[0] + b[2]) / 2


def polygon(size, points) -> torch.Tensor:
    """A mask drawn by the test: the inside of ``points`` on a ``(W, H)`` canvas, [1, H, W]."""
    return torch.from_numpy(standin.polygon_mask(size, points)).float()[None]


def red_pixels(photo, points):
    """Pixels inside ``points`` that are shirt-red (a colour segmentation, as a pack would)."""
    r, g, b = photo[..., 0], photo[..., 1], photo[..., 2]
    red = (r > 0.3) & (r > 1.6 * g) & (r > 1.4 * b)
    return polygon((photo.shape[1], photo.shape[0]), points) * red.float()


# t1.jpg, drawn by looking at the photo: Chandler's red shirt (person 3 left to right; the
# outline the from_photos picture paints), Joey's grey shirt (person 4), Ross's dark shirt
# (person 2)
RED_SHIRT = standin.T1_RED_SHIRT
GREY_SHIRT = [(905, 235), (1010, 215), (1060, 250), (1060, 450), (950, 470), (900, 420)]
ROSS_SHIRT = [(440, 420), (560, 400), (600, 450), (590, 560), (470, 600), (430, 520)]


# ---------------------------------------------------------------------- people, order, crops

@pytest.mark.parametrize("crop,size", [("face box (released)", 512), (SQUARE, 256)])
def test_face_crops_are_the_face_encoders_in_left_to_right_order(N, faces, face_root, crop,
                                                                  size):
    photo = insightface_image("t1.jpg")
    crops, regions, people, preview, report = people_from(N, photo, crop=crop, size=size).result
    assert crops.shape == (6, size, size, 3) and regions.shape == (6, 886, 1280)
    xs = [centre_x(p.bbox) for p in people.people]
    assert xs == sorted(xs)
    for k, p in enumerate(people.people):
        enc, info = faces.LumosXFaceEncoder.execute(photo[None], VECTRON_PACK, select=INDEX,
                                                    index=k, size=size, crop=crop).result
        assert torch.equal(crops[k], enc[0]), k
        assert p.info["bbox"] == info[0]["bbox"] and p.info["crop_box"] == info[0]["crop_box"]
        assert torch.equal(p.info["embedding"], info[0]["embedding"])
        assert {key: v for key, v in p.info.items() if key != "embedding"} == \
            {key: v for key, v in info[0].items() if key != "embedding"}
    assert report.startswith("6 people in the 1280x886 photo, counted left to right from 0:")
    assert "garments: none connected" in report
    assert preview.shape == (1, 886, 1280, 3)


def test_face_encoder_batch_crops_each_photo_the_same_way(faces, face_root):
    """A batch in 'square with margin' crops every photo square (the loop used to overwrite
    the crop choice with the first photo's crop)."""
    photos = torch.stack([astronaut(), astronaut().flip(1)])
    crops, infos = faces.LumosXFaceEncoder.execute(photos, VECTRON_PACK, crop=SQUARE).result
    for b in range(2):
        alone, info = faces.LumosXFaceEncoder.execute(photos[b:b + 1], VECTRON_PACK,
                                                      crop=SQUARE).result
        assert torch.equal(crops[b], alone[0]) and infos[b]["crop_box"] == info[0]["crop_box"]
        x1, y1, x2, y2 = infos[b]["crop_box"]
        assert x2 - x1 == y2 - y1


def test_largest_first_and_max_people(N, faces, face_root):
    photo = vectron_image("players.jpg")
    everyone = people_from(N, photo).result[2]
    assert len(everyone.people) >= 20
    crops, _, by_size, _, _ = people_from(N, photo, order=LARGEST_FIRST).result
    largest = faces.LumosXFaceEncoder.execute(photo[None], VECTRON_PACK).result[0]
    assert torch.equal(crops[0], largest[0])                 # the Face Encoder's "largest"
    areas = [box_area(p.bbox) for p in by_size.people]
    assert areas == sorted(areas, reverse=True)
    assert sorted(p.bbox for p in by_size.people) == sorted(p.bbox for p in everyone.people)
    team = people_from(N, photo, max_people=12).result[2]     # the 12 largest faces...
    assert len(team.people) == 12
    xs = [centre_x(p.bbox) for p in team.people]
    assert xs == sorted(xs)                                  # ... counted left to right
    smallest_kept = min(box_area(p.bbox) for p in team.people)
    assert smallest_kept == pytest.approx(areas[11])


def test_order_faces_pure():
    boxes = [(50, 0, 70, 20), (0, 0, 40, 40), (100, 0, 105, 5), (20, 50, 30, 60)]
    assert order_faces(boxes) == [1, 3, 0, 2]
    assert order_faces(boxes, LARGEST_FIRST) == [1, 0, 3, 2]
    assert order_faces(boxes, max_people=2) == [1, 0]
    with pytest.raises(ValueError, match="order"):
        order_faces(boxes, "tallest")


def test_body_regions_sit_under_each_face(N, face_root):
    photo = insightface_image("t1.jpg")
    _, regions, people, _, _ = people_from(N, photo).result
    boxes = [p.bbox for p in people.people]
    assert not (regions.sum(0) > 1).any()                    # one owner per pixel
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        fh = y2 - y1
        cx = int(centre_x((x1, y1, x2, y2)))
        chest = int(min(885, y2 + 1.0 * fh))
        assert regions[k, chest, cx] == 1, k                 # the body under the face
        assert regions[k, int(y1 + fh / 2), cx] == 1, k      # and the head
        for j, (a1, b1, a2, b2) in enumerate(boxes):         # nobody else's face
            if j != k:
                assert regions[k, int(b1) + 2:int(b2) - 2, int(a1) + 2:int(a2) - 2].sum() == 0
        # scaled by the face: about body_width face widths wide at most
        cols = torch.nonzero(regions[k].any(0)).flatten()
        assert cols[-1] - cols[0] <= 2.8 * (x2 - x1) + 2
    bigger = people_from(N, photo, body_width=1.0, body_height=1.0).result[1]
    assert bigger.sum() < regions.sum()


# ---------------------------------------------------------------------- garments

def test_garments_drawn_on_t1_go_to_their_wearers(N, face_root):
    photo = insightface_image("t1.jpg")
    size = (photo.shape[1], photo.shape[0])
    garments = torch.cat([red_pixels(photo, RED_SHIRT), polygon(size, GREY_SHIRT)])
    _, _, people, preview, report = people_from(N, photo, garments=garments).result
    a = people.assignment
    assert {(s.mask_index, s.person) for s in a.shares} == {(0, 3), (1, 4)}   # every piece
    for mask, wearer in ((0, 3), (1, 4)):
        _, fractions, _ = G.overlaps(garments[mask], garments[mask] > 0, people.regions())
        assert fractions[wearer] > 0.7 and fractions[wearer] > 3 * sorted(fractions)[-2]
    assert torch.equal(a.person_keep(3), garments[0] > 0)
    assert "mask 1 " in report and "-> person 3" in report and "-> person 4" in report
    assert "person 3 wears: mask 1" in report and "person 0 wears: nothing" in report
    # Pick Person: the face as People From Photo made it, the shirt cut out on white
    crops = people_from(N, photo).result[0]
    face, garment, region, worn = N["LumosXPickPerson"].execute(people, 3).result
    assert torch.equal(face[0], crops[3])
    keep = garments[0] > 0.5
    ys, xs = torch.nonzero(keep, as_tuple=True)
    assert garment.shape == (1, int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1), 3)
    inside = keep[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    crop = photo[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert torch.equal(garment[0][inside], crop[inside])
    assert torch.all(garment[0][~inside] == 1)
    assert torch.equal(worn[0], garments[0]) and region.shape == (1, 886, 1280)
    # the preview tints the shirt in person 3's colour (orange)
    orange = torch.tensor([245, 130, 49]) / 255
    before = (photo[keep] - orange).norm(dim=-1).mean()
    assert (preview[0][keep] - orange).norm(dim=-1).mean() < 0.5 * before


def test_a_mask_over_two_people_part_whole_split(N, face_root):
    photo = insightface_image("t1.jpg")
    size = (photo.shape[1], photo.shape[0])
    bridge = polygon(size, [(450, 470), (880, 470), (880, 560), (450, 560)])   # Ross..Chandler
    two = torch.maximum(polygon(size, ROSS_SHIRT), red_pixels(photo, RED_SHIRT))
    runs = {mode: people_from(N, photo, garments=torch.cat([bridge, two]), assign=mode).result
            for mode in G.MODES}
    by_part = runs[G.BY_PART][2].assignment
    # one connected band: to the person it overlaps most; two painted shirts: one each
    band = [s for s in by_part.shares if s.mask_index == 0]
    assert len(band) == 1 and band[0].person in (2, 3)
    best = max((2, 3), key=lambda p: band[0].overlaps[p])
    assert band[0].person == best and band[0].overlaps[5 - best] > G.DEFAULT_MIN_OVERLAP
    assert {s.person for s in by_part.shares if s.mask_index == 1 and s.pixels > 500} == {2, 3}
    whole = runs[G.WHOLE][2].assignment
    assert [s.person for s in whole.shares] == [best, whole.shares[1].person]
    assert len(whole.shares) == 2
    split = runs[G.SPLIT][2].assignment
    band = [s for s in split.shares if s.mask_index == 0]
    assert sorted(s.person for s in band) == [2, 3]
    assert torch.equal(band[0].keep | band[1].keep, bridge[0] > 0.5)
    assert not (band[0].keep & band[1].keep).any()
    for s in band:                               # each piece lies (mostly) in its wearer's region
        assert s.overlaps[s.person] > 0.8
    assert "piece 1 of 2" in runs[G.SPLIT][4] and "split at region borders" in runs[G.SPLIT][4]


def test_garment_nobody_wears_is_reported_not_given(N, face_root):
    photo = insightface_image("t1.jpg")
    size = (photo.shape[1], photo.shape[0])
    lamp = polygon(size, [(500, 160), (880, 160), (880, 215), (500, 215)])   # the ceiling lamp
    _, _, people, _, report = people_from(N, photo, garments=lamp, min_overlap=0.9).result
    assert [s.person for s in people.assignment.shares] == [None]
    assert "NOBODY" in report
    face, garment, _, worn = N["LumosXPickPerson"].execute(people, 2).result
    from comfy_execution.graph_utils import ExecutionBlocker
    assert isinstance(garment, ExecutionBlocker)
    assert "person 2 (index = 2) has no garment" in garment.message and worn.sum() == 0
    plain = people_from(N, photo).result[2]
    blocked = N["LumosXPickPerson"].execute(plain, 0).result[1]
    assert "no garments are connected" in blocked.message


BOXES = [(3, 0, 7, 4), (13, 0, 17, 4)]     # face height 4: pieces 0 px apart are one part


def test_assignment_pure_fractions_and_specks():
    regions = torch.zeros(2, 10, 20, dtype=torch.bool)
    regions[0, :, :10] = True
    regions[1, :, 10:] = True
    mask = torch.zeros(1, 10, 20)
    mask[0, 2:8, 2:12] = 1.0                 # 8 of 10 columns in person 0's region
    mask[0, 0, 19] = 1.0                     # a speck at the far right
    a = G.assign_garments(mask, regions, BOXES)
    big, speck = a.shares
    assert big.overlaps == pytest.approx((0.8, 0.2)) and big.person == 0 and big.pieces == 2
    assert speck.person == 1 and speck.pixels == 1
    soft = mask * 0.5
    assert G.assign_garments(soft, regions, BOXES).shares[0].pixels == pytest.approx(30)
    # pieces a fold apart are one part; garments painted apart stay apart
    pieces = torch.zeros(1, 10, 200)
    pieces[0, 2:8, 2:60] = 1
    pieces[0, 2:8, 63:100] = 1            # 3 px gap: one part with faces 100 px tall
    pieces[0, 2:8, 140:180] = 1           # 40 px gap: a part of its own
    wide = torch.zeros(2, 10, 200, dtype=torch.bool)
    wide[0, :, :120] = True
    wide[1, :, 120:] = True
    tall = [(40, 0, 80, 100), (140, 0, 180, 100)]
    a = G.assign_garments(pieces, wide, tall)
    assert [(s.pixels, s.person) for s in a.shares] == [(6 * 95, 0), (6 * 40, 1)]
    with pytest.raises(ValueError, match="mode"):
        G.assign_garments(mask, regions, BOXES, mode="nearest")
    with pytest.raises(ValueError, match="min_overlap"):
        G.assign_garments(mask, regions, BOXES, min_overlap=1.5)


def test_group_photo_work_without_a_detector():
    """lumosx_core.photos.group on people built by hand: garments given and checked, Pick
    Person's face / garment / region / worn mask, the report and the preview."""
    from lumosx_core.image_prep import region_of
    from lumosx_core.photos.group import (check_one_photo, faces_of, give_garments,
                                          pick_person, preview, report)
    from lumosx_core.photos.people import PeopleInPhoto, PhotoPerson
    photo = torch.rand(10, 20, 3)
    regions = torch.zeros(2, 10, 20, dtype=torch.bool)
    regions[0, :, :10] = True
    regions[1, :, 10:] = True
    people = PeopleInPhoto(photo, tuple(
        PhotoPerson(tuple(float(v) for v in b), torch.full((4, 4, 3), float(k)),
                    {"det_score": 0.9}, regions[k]) for k, b in enumerate(BOXES)))
    face, garment, why, region, worn = pick_person(people, 1)
    assert garment is None and "no garments are connected" in why
    assert torch.equal(face[0], people.people[1].face) and region_of(face) is None
    assert torch.equal(region[0], regions[1].float()) and not worn.any()
    assert "garments: none connected" in report(people)
    mask = torch.zeros(1, 10, 20)
    mask[0, 5:9, 2:8] = 1.0                                  # on person 0
    with pytest.raises(ValueError, match="garments"):
        give_garments(people, torch.zeros(1, 10, 20), G.BY_PART, 0.3)   # empty
    with pytest.raises(ValueError, match="garments"):
        give_garments(people, torch.ones(1, 9, 20), G.BY_PART, 0.3)     # another size
    dressed = give_garments(people, mask, G.BY_PART, 0.3, (10, 20))
    face, garment, why, region, worn = pick_person(dressed, 0)
    assert garment.shape == (1, 4, 6, 3) and torch.equal(garment[0], photo[5:9, 2:8])
    assert torch.equal(worn[0].bool(), mask[0].bool())
    assert pick_person(dressed, 1)[1] is None and "gave this person no garment" in \
        pick_person(dressed, 1)[2]
    with pytest.raises(ValueError, match="index = 2 is out of range"):
        pick_person(dressed, 2)
    with pytest.raises(ValueError, match="people: expected the people output"):
        pick_person("x", 0)
    assert "person 0" in report(dressed) and "garments: none connected" not in report(dressed)
    assert faces_of(dressed).shape == (2, 4, 4, 3)
    assert preview(dressed).shape == (1, 10, 20, 3)
    check_one_photo(torch.rand(1, 4, 4, 3))
    with pytest.raises(ValueError, match="image: a batch of 2 images"):
        check_one_photo(torch.rand(2, 4, 4, 3))


# ---------------------------------------------------------------------- errors

def test_errors_name_the_input(N, face_root):
    photo = insightface_image("t1.jpg")
    node = N["LumosXPeopleFromPhoto"]
    with pytest.raises(ValueError, match=r"^image: a batch of 2"):
        node.execute(torch.stack([photo, photo]), VECTRON_PACK)
    with pytest.raises(ValueError, match=r"garments is 64x64 but image is 1280x886"):
        people_from(N, photo, garments=torch.zeros(1, 64, 64))
    with pytest.raises(ValueError, match=r"^garments \(item 2 of 2\) is empty"):
        people_from(N, photo, garments=torch.cat([torch.ones(1, 886, 1280),
                                                 torch.zeros(1, 886, 1280)]))
    with pytest.raises(ValueError, match=r"^image: no face found in the 300x200 photo"):
        node.execute(torch.full((1, 200, 300, 3), 0.5), VECTRON_PACK)
    with pytest.raises(ValueError, match="order"):
        people_from(N, photo, order="tallest")
    people = people_from(N, photo).result[2]
    pick = N["LumosXPickPerson"]
    with pytest.raises(ValueError, match=r"index = 6 is out of range: 6 people .*between 0 and 5"):
        pick.execute(people, 6)
    with pytest.raises(ValueError, match=r"^people: expected"):
        pick.execute(photo, 0)
