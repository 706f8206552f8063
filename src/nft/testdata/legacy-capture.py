import ctypes, socket, sys, struct
libc = ctypes.CDLL(None, use_errno=True)
def get(v6, name):
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    level = 41 if v6 else 0
    s = socket.socket(fam, socket.SOCK_DGRAM)
    buf = ctypes.create_string_buffer(84)
    buf.raw = name.encode().ljust(84, b"\0")[:84]
    ln = ctypes.c_uint(84)
    assert libc.getsockopt(s.fileno(), level, 64, buf, ctypes.byref(ln)) == 0, ctypes.get_errno()
    info = buf.raw
    size = struct.unpack_from("=I", info, 80)[0]
    eb = ctypes.create_string_buffer(40 + size)
    eb.raw = name.encode().ljust(32, b"\0") + struct.pack("=I", size) + b"\0" * (4 + size)
    ln = ctypes.c_uint(40 + size)
    assert libc.getsockopt(s.fileno(), level, 65, eb, ctypes.byref(ln)) == 0, ctypes.get_errno()
    return info, eb.raw[40:40 + size]
v6 = sys.argv[1] == "6"
info, entries = get(v6, "filter")
print(info.hex())
print(entries.hex())
