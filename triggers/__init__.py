"""HTTP and timer triggers (blueprints): parse input at the edge and start or signal work."""
