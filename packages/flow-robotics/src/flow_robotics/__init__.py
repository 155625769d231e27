"""flow-robotics: a plugin for flow.

The hook implementations are in :mod:`flow_robotics.plugin`; flow finds them through the entry
point ``robotics`` in the group ``flow.plugins``. Components are imported only when they are
first used, so importing this package stays cheap.
"""
