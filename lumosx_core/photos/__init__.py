"""From ordinary photos to LumosX references, the data side of the paper done in the graph.

* :mod:`.masks` -- ComfyUI MASK values checked and normalised (one home for "which values
  mean keep", batches, sizes), bounding boxes, connected parts;
* :mod:`.cutout` -- the masked pixels on white, cropped tight to the mask's box: the framing
  of the authors' attribute and object references;
* :mod:`.people` -- everyone in a group photo: faces in a stated order, each person's body
  region (a geometric prior from the face box);
* :mod:`.garments` -- which garment mask belongs to which person (overlap with the body
  regions), with a text report;
* :mod:`.group` -- People From Photo and Pick Person's work: everyone in one photo with the
  Face Encoder's crops, garments given, preview and report, person k.

Pure torch / numpy (SciPy for connected parts, Pillow for the preview), no ``comfy``.
"""
