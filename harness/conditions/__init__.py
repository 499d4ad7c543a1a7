"""Image conditions: what a model sees instead of the clean image (corruptions, input resolution,
JPEG, blur, noise), parsed from a protocol's `conditions:` and applied before a model's own pipeline."""
