"""Composition root: builds the Durable Functions app and registers the feature blueprints.

Nothing else belongs here: the worker imports this module at every cold start, so it must stay
cheap (no Azure management SDK imports, no I/O, no configuration read at import time).
"""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
