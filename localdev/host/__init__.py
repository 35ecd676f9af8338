"""A local Azure Functions host with the Durable Functions extension, for development and tests.

It runs any v2-programming-model Python function app (``function_app.py``) the way ``func start``
and the Durable extension do: it indexes the app with the library's own indexing, serves HTTP
triggers, speaks the Durable extension's protocol to the Durable Functions SDK (orchestration
replay, activities, entities, the durable client's HTTP API), fires timer triggers and keeps its
task hub in SQLite so that a killed host resumes where it stopped. See ``README.md`` beside this
file. Never deployed (``.funcignore``) and never imported by the app itself.
"""
