"""Fixtures of the Kubernetes test kit: the API double (or envtest) and the fake kubelet."""
