"""The city's departmental connectors, one module per department system.

A connector's short name is its module name here: ``hub connector run population``
loads ``connectors.population``. Any other connector is named by dotted path,
``package.module:ClassName``.
"""
