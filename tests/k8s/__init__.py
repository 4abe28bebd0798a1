"""Test kit for Kubernetes: an API server double, a fake kubelet, envtest start-up."""
