# mypy: disable-error-code="untyped-decorator"
"""An app shaped like the official orchestration versioning sample of the Durable Python SDK.

Oracle: Azure/azure-functions-durable-python, samples-v2/orchestration_versioning
(function_app.py and README.md at commit 20ceeaaff337bbe8d45337d790ea96148c711f05, host.json
at 62b78c82efade16e8959b2c068010c01dfd3db9e): an HTTP starter that passes an optional
`version` to `start_new`, an orchestrator that takes the legacy path while `context.version`
is "1.0", waits for a "Continue" event (the moment to redeploy with a new `defaultVersion`),
then calls a sub-orchestrator once with an explicit version and once without, and reports the
versions it saw. Written for these tests, not copied.
"""

import logging

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}")
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    name = req.route_params["functionName"]
    version = req.params.get("version")
    if version:
        instance_id = await client.start_new(name, version=version)
    else:
        instance_id = await client.start_new(name)
    logging.info("Started '%s' as %s (version %s)", name, instance_id, version or "default")
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.orchestration_trigger(context_name="context")
def my_orchestrator(context: df.DurableOrchestrationContext):
    # The version is the one the instance was created with, whatever host.json says later.
    legacy = context.version == "1.0"
    greeting = yield context.call_activity("activity_a" if legacy else "activity_b")

    context.set_custom_status("Waiting for Continue event...")
    yield context.wait_for_external_event("Continue")
    context.set_custom_status("Continue event received")

    explicit = yield context.call_sub_orchestrator("my_sub_orchestrator", version="0.9")
    default = yield context.call_sub_orchestrator("my_sub_orchestrator")
    return [
        f"Orchestration version: {context.version}",
        f"Suborchestration version (explicit): {explicit}",
        f"Suborchestration version (default): {default}",
        greeting,
    ]


@app.orchestration_trigger(context_name="context")
def my_sub_orchestrator(context: df.DurableOrchestrationContext):
    return context.version


@app.activity_trigger(input_name="input")
def activity_a(input: str) -> str:
    return "Hello from A!"


@app.activity_trigger(input_name="input")
def activity_b(input: str) -> str:
    return "Hello from B!"
