"""Cluster drivers: where endpoints and jobs run (Kubernetes, or processes on this host).

``protocol`` holds the interface every driver implements and the plain values it speaks;
each driver lives in a module of its own and imports nothing else of the project.
"""
