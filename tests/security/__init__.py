"""The adversarial security suite: each test is an attack through HTTP, and its defence."""
