"""The site's Modbus server API: the register map, the site behind it, and the server."""
