"""The catalogue of shared resources (资源目录) and the departments that provide them."""

from hub.catalogue.model import Catalogue, Department, FieldSpec, ResourceSpec, load_builtin

__all__ = ["Catalogue", "Department", "FieldSpec", "ResourceSpec", "load_builtin"]
