"""Conditioning inputs: reference images, phrases and their token masks, prompt clean-up."""
