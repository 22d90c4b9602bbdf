"""Fakes of the outside services Cleack talks to, speaking their real wire format over real sockets."""
