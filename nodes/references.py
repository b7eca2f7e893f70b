"""Reference nodes: people (a face and their attributes) and background/object images, chained
through one ``LUMOSX_REFS`` socket. Each image input takes one picture (a batch is an error)."""
from __future__ import annotations

from comfy_api.latest import io

from ..lumosx_core.conditioning.references import chained, given_attributes, phrase_of
from .validation import LumosXNode, check_inputs, schema

Refs = io.Custom("LUMOSX_REFS")
REFS_TIP = "People and references added so far (a LumosX Person or Reference node); optional."
OUT_TIP = ("Every reference so far plus this node's, in order: into the next Person / "
           "Reference or Bind.")
MAX_ATTRIBUTES = 6
KINDS = ["object", "background"]


class LumosXPerson(LumosXNode):
    @classmethod
    def define_schema(cls):
        attrs = []
        for i in range(1, MAX_ATTRIBUTES + 1):
            attrs += [io.Image.Input(f"attribute_{i}", optional=True, tooltip=(
                          "One picture of an attribute of this person (clothes, accessory, "
                          "hair) on a plain background.")),
                      io.String.Input(f"phrase_{i}", default="", optional=True, tooltip=(
                          f"Words naming attribute {i} in the prompt, e.g. 'white jacket'."))]
        return schema(
            "LumosXPerson", "LumosX Person",
            description=(
                "One person: a face image with the phrase that names them in the prompt, and "
                "the attribute images that belong to them. Chain several Person nodes to add "
                "more people; the face comes first."),
            inputs=[
                io.Image.Input("face", tooltip=(
                    "One clean face picture (see LumosX Face Encoder).")),
                io.String.Input("face_phrase", default="man", tooltip=(
                    "Words naming this person in the prompt, e.g. 'man on the left'.")),
                Refs.Input("references", optional=True, tooltip=REFS_TIP),
                *attrs,
            ],
            outputs=[Refs.Output(display_name="references", tooltip=OUT_TIP)],
        )

    @classmethod
    def execute(cls, face, face_phrase, references=None, **attributes) -> io.NodeOutput:
        check_inputs(cls, {"face_phrase": face_phrase, **attributes})
        pairs, names = given_attributes(attributes, MAX_ATTRIBUTES)
        return io.NodeOutput(chained(references).with_person(
            face, phrase_of(face_phrase, "face_phrase"), pairs, names))


class LumosXReference(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXReference", "LumosX Reference",
            description=(
                "A background (one per video) or object image with the phrase that names it in "
                "the prompt."),
            inputs=[
                io.Image.Input("image", tooltip="One picture of the background or object."),
                io.String.Input("phrase", default="", tooltip=(
                    "Words naming it in the prompt, e.g. 'white lamp'.")),
                io.Combo.Input("kind", options=KINDS, default="object", tooltip=(
                    "object, or background (one per video); both come before the people in the "
                    "sequence.")),
                Refs.Input("references", optional=True, tooltip=REFS_TIP),
            ],
            outputs=[Refs.Output(display_name="references", tooltip=OUT_TIP)],
        )

    @classmethod
    def execute(cls, image, phrase, kind, references=None) -> io.NodeOutput:
        check_inputs(cls, locals())
        refs, phrase = chained(references), phrase_of(phrase, "phrase")
        add = refs.with_background if kind == "background" else refs.with_object
        return io.NodeOutput(add(image, phrase))


NODES = [LumosXPerson, LumosXReference]
