"""The network an OutSystems platform needs, and a pure model of how Azure filters it.

- `requirements`: OutSystems' network requirements (and what the setup and Azure's services add)
  as a flow matrix: what must be open and what must stay closed, each row citing its source.
- `nsg`: Azure's network security group evaluation (priorities, default rules, service tags).
- `reachability`: a `NetworkView` over plain ARM bodies (the desired graph or the simulator's
  live state) that answers whether a flow gets through: NSGs on both ends, routes, NAT gateways,
  default outbound access, SQL firewall and virtual network rules.

Everything here is pure: no I/O, no Azure SDK.
"""
