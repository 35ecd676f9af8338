# mypy: disable-error-code="untyped-decorator"
"""Activities with output bindings, shaped like the official Durable Python samples.

Oracle: Azure/azure-functions-durable-python at e7cb43deec66676fe4a2af020c31885f5f99e122,
samples/monitor/E3_SendAlert/function.json and samples/human_interaction/SendSMSChallenge/
function.json: an activity (`activityTrigger`) whose result goes out through a Twilio SMS output
binding (`twilioSms`, `from` = `%TwilioPhoneNumber%`) that it sets with `message.set(...)`. The
v2 programming model declares the same binding with `generic_output_binding`. A queue output
on an activity is here too: the other output an activity commonly has. Written for these tests.
"""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.params.get("to"))
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.orchestration_trigger(context_name="context")
def alert_on_call(context: df.DurableOrchestrationContext):
    checked = yield context.call_activity("check_repository", context.get_input())
    sent = yield context.call_activity("send_sms_alert", context.get_input())
    return [checked, sent]


@app.orchestration_trigger(context_name="context")
def copy_item(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("copy_to_queue", context.get_input()))


@app.activity_trigger(input_name="phone_number")
def check_repository(phone_number: str) -> str:
    return "too many open issues"


@app.activity_trigger(input_name="phone_number")
@app.generic_output_binding(
    arg_name="message",
    type="twilioSms",
    account_sid_setting="TwilioAccountSid",
    auth_token_setting="TwilioAuthToken",
    **{"from": "%TwilioPhoneNumber%"},
)
def send_sms_alert(phone_number: str, message: func.Out[str]) -> str:
    message.set(json.dumps({"body": "Check on your repository", "to": phone_number}))
    return "Message sent!"


@app.activity_trigger(input_name="item")
@app.queue_output(arg_name="copy", queue_name="copies", connection="AzureWebJobsStorage")
def copy_to_queue(item: str, copy: func.Out[str]) -> str:
    copy.set(item)
    return "copied"
