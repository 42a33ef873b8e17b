"""Opens sockets: out to the internet, to the host's loopback, and a listening one."""
import socket

REACHED = []
for address in (("1.1.1.1", 53), ("127.0.0.1", 22), ("127.0.0.1", 80)):
    try:
        socket.create_connection(address, timeout=0.5).close()
        REACHED.append(address)
    except OSError:
        pass
try:
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
except OSError:
    pass


def relu(x):
    raise NotImplementedError(f"relu (reached {REACHED})")
