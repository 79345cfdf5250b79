"""The ``yushan`` command line: the control-plane server, the client commands and the simulator."""
