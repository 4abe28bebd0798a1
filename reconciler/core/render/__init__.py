"""Render: a DeploymentTemplate and a Deployment made into what a driver runs (pure).

Templates hold ``{placeholder}`` strings (``{model_path}``, ``{port}``, ...); this package
fills them and nothing else, so drivers receive finished argv lists and env.
"""
