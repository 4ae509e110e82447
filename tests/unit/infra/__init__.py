"""Checks of infra/: the container image, Compose and Kubernetes manifests."""
