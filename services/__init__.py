"""The app's use cases: platform deploy, plan, teardown, state, operations; scaling by hand,
the scaling view, the scaling timer and the alert intake.

Each takes its ports (`services.ports`: the durable client, ARM) as arguments and answers with
domain results (dataclasses) or raises `services.errors.ServiceError`; the HTTP and timer
triggers only parse their input and map results and errors to answers (`docs/architecture.md`).
"""
