"""Composition root: builds the Durable Functions app and registers the feature blueprints.

Nothing else belongs here: the worker imports this module at every cold start, so it must stay
cheap (no Azure management SDK imports, no I/O, no configuration read at import time).
"""

import azure.durable_functions as df
import azure.functions as func

from activities import events as event_activities
from activities import resources as resource_activities
from activities import scaling as scaling_activities
from activities import teardown as teardown_activities
from activities import upgrade as upgrade_activities
from orchestrators import deploy as deploy_orchestrations
from orchestrators import drift as drift_orchestrations
from orchestrators import scale_requests as scale_request_entities
from orchestrators import scaler as scaler_orchestrations
from orchestrators import teardown as teardown_orchestrations
from orchestrators import upgrade as upgrade_orchestrations
from triggers import alerts as alert_triggers
from triggers import drift as drift_triggers
from triggers import openapi as openapi_trigger
from triggers import platforms as platform_triggers
from triggers import scaling as scaling_triggers

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    platform_triggers.bp,
    openapi_trigger.bp,
    deploy_orchestrations.bp,
    teardown_orchestrations.bp,
    resource_activities.bp,
    teardown_activities.bp,
    event_activities.bp,
    alert_triggers.bp,
    scaling_triggers.bp,
    scaler_orchestrations.bp,
    scale_request_entities.bp,
    scaling_activities.bp,
    drift_triggers.bp,
    drift_orchestrations.bp,
    upgrade_orchestrations.bp,
    upgrade_activities.bp,
):
    app.register_functions(blueprint)
