"""The web layer: one module per blueprint, forms beside their views."""
