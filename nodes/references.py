"""Reference nodes: people (a face plus that person's attributes) and background/object images.

They chain through one ``LUMOSX_REFS`` socket so people and references accumulate in order.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..lumosx_core.conditioning.references import ReferenceSet
from .validation import check_inputs, validate

Refs = io.Custom("LUMOSX_REFS")

MAX_ATTRIBUTES = 6
KINDS = ["object", "background"]


def _refs_in(references) -> ReferenceSet:
    if references is None:
        return ReferenceSet()
    if not isinstance(references, ReferenceSet):
        raise ValueError("references: expected the output of a LumosX Person or LumosX "
                         f"Reference node, got {type(references).__name__}")
    return references


def _phrase(value, name: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValueError(f"{name} is empty: write the words that name this reference in the "
                         f"prompt (they must occur there verbatim)")
    return text


class LumosXPerson(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        attrs = []
        for i in range(1, MAX_ATTRIBUTES + 1):
            attrs += [
                io.Image.Input(f"attribute_{i}", optional=True,
                               tooltip="An attribute of this person (clothes, accessory, hair) "
                                       "on a plain background."),
                io.String.Input(f"phrase_{i}", default="", optional=True,
                                tooltip=f"Words naming attribute {i} in the prompt, e.g. "
                                        f"'white jacket'."),
            ]
        return io.Schema(
            node_id="LumosXPerson",
            display_name="LumosX Person",
            category="LumosX",
            description=("One person: a face image with the phrase that names them in the "
                         "prompt, and the attribute images that belong to them. Chain several "
                         "Person nodes to add more people; the face comes first."),
            inputs=[
                io.Image.Input("face", tooltip="A clean face crop (see LumosX Face Encoder)."),
                io.String.Input("face_phrase", default="man",
                                tooltip="Words naming this person in the prompt, e.g. 'man on "
                                        "the left'."),
                Refs.Input("references", optional=True,
                           tooltip="People and references added so far."),
                *attrs,
            ],
            outputs=[Refs.Output(display_name="references")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return validate(cls, values)

    @classmethod
    def execute(cls, face, face_phrase, references=None, **attributes) -> io.NodeOutput:
        check_inputs(cls, {"face_phrase": face_phrase, **attributes})
        refs = _refs_in(references)
        pairs = []
        for i in range(1, MAX_ATTRIBUTES + 1):
            img = attributes.get(f"attribute_{i}")
            if img is None:
                continue
            pairs.append((img, _phrase(attributes.get(f"phrase_{i}"), f"phrase_{i}")))
        out = refs.with_person(face, _phrase(face_phrase, "face_phrase"), pairs)
        return io.NodeOutput(out)


class LumosXReference(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXReference",
            display_name="LumosX Reference",
            category="LumosX",
            description=("A background (one per video) or object image with the phrase that "
                         "names it in the prompt."),
            inputs=[
                io.Image.Input("image"),
                io.String.Input("phrase", default="",
                                tooltip="Words naming it in the prompt, e.g. 'white lamp'."),
                io.Combo.Input("kind", options=KINDS, default="object"),
                Refs.Input("references", optional=True),
            ],
            outputs=[Refs.Output(display_name="references")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return validate(cls, values)

    @classmethod
    def execute(cls, image, phrase, kind, references=None) -> io.NodeOutput:
        check_inputs(cls, locals())
        refs = _refs_in(references)
        phrase = _phrase(phrase, "phrase")
        if kind == "background":
            return io.NodeOutput(refs.with_background(image, phrase))
        return io.NodeOutput(refs.with_object(image, phrase))


NODES = [LumosXPerson, LumosXReference]
