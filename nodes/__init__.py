"""ComfyUI glue of LumosX: thin nodes over ``lumosx_core``."""
