"""The Azure Resource Manager adapter: credential, cached management clients, endpoint override.

`azure.mgmt` is imported only inside this package and only when a client is first needed.
"""
