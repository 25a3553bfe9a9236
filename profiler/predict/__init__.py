"""Predicted time: the ops a model executes (`ops`), each priced on a roofline of a hardware profile
(`roofline`), and whole training runs built from those steps (`training`). No torch, no measurement."""
