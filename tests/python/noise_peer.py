#!/usr/bin/env python3
"""A Noise peer built on Python's `noiseprotocol` 0.3.1, for Tern's live
interoperability tests (tests/tests/interop_python.rs).

The Rust test drives it over stdin/stdout, one request line, one reply line.
Words are separated by single spaces; byte strings are lower-case hex, with
`-` for no bytes. Every reply is `OK <fields...>` or `ERR <text>`.

Requests:
  HELLO                          -> OK noiseprotocol <version>
  SESSION <name> <role> <prologue> <s> <rs> <psks>
                                 starts a new handshake (replacing any other);
                                 role is `initiator` or `responder`; s is our
                                 static private key, rs the peer's static
                                 public key, psks the PSKs in the order the
                                 pattern uses them, comma-separated (each may
                                 be `-`, meaning not given)
                                 -> OK <our static public key>
  HS_WRITE <payload>             -> OK <handshake message>
  HS_READ <message>              -> OK <payload>
  STATUS                         -> OK <finished 0|1> <handshake hash> <rs>
  ENC <payload>                  -> OK <transport message>
  DEC <message>                  -> OK <payload>
  REKEY_OUT / REKEY_IN           -> OK
  QUIT                           exits (so does end of input)

Any exception becomes `ERR <ExceptionType>: <message>`; the session is then
in whatever state noiseprotocol left it.
"""

import importlib.metadata
import sys
import warnings

from noise.connection import Keypair, NoiseConnection

warnings.simplefilter("ignore")


def unhex(word):
    return b"" if word == "-" else bytes.fromhex(word)


def tohex(data):
    return bytes(data).hex() or "-"


class Session:
    def __init__(self, name, role, prologue, s, rs, psks):
        conn = NoiseConnection.from_name(name.encode("ascii"))
        if role == "initiator":
            conn.set_as_initiator()
        elif role == "responder":
            conn.set_as_responder()
        else:
            raise ValueError("role must be initiator or responder, not %r" % role)
        conn.set_prologue(prologue)
        self.s_pub = b""
        if s:
            conn.set_keypair_from_private_bytes(Keypair.STATIC, s)
            self.s_pub = conn.noise_protocol.keypairs["s"].public_bytes
        if rs:
            conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, rs)
        if psks:
            conn.set_psks(psks=psks)
        conn.start_handshake()
        self.conn = conn
        # noiseprotocol drops its HandshakeState when the handshake ends;
        # keep it to report the remote static key it learned.
        self.hs = conn.noise_protocol.handshake_state

    def remote_static(self):
        return getattr(self.hs.rs, "public_bytes", b"") or b""


def handle(session, cmd, args):
    """Returns (session, reply fields)."""
    if cmd == "HELLO":
        return session, ["noiseprotocol", importlib.metadata.version("noiseprotocol")]
    if cmd == "SESSION":
        name, role, prologue, s, rs, psks = args
        psk_list = [] if psks == "-" else [unhex(p) for p in psks.split(",")]
        session = Session(name, role, unhex(prologue), unhex(s), unhex(rs), psk_list)
        return session, [tohex(session.s_pub)]
    if session is None:
        raise RuntimeError("no SESSION yet")
    conn = session.conn
    if cmd == "HS_WRITE":
        return session, [tohex(conn.write_message(unhex(args[0])))]
    if cmd == "HS_READ":
        return session, [tohex(conn.read_message(unhex(args[0])))]
    if cmd == "STATUS":
        if conn.handshake_finished:
            return session, ["1", tohex(conn.get_handshake_hash()), tohex(session.remote_static())]
        return session, ["0", "-", tohex(session.remote_static())]
    if cmd == "ENC":
        return session, [tohex(conn.encrypt(unhex(args[0])))]
    if cmd == "DEC":
        return session, [tohex(conn.decrypt(unhex(args[0])))]
    if cmd == "REKEY_OUT":
        conn.rekey_outbound_cipher()
        return session, []
    if cmd == "REKEY_IN":
        conn.rekey_inbound_cipher()
        return session, []
    raise ValueError("unknown request %r" % cmd)


def main():
    session = None
    out = sys.stdout
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "QUIT":
            break
        try:
            session, fields = handle(session, cmd, args)
            out.write(" ".join(["OK"] + fields) + "\n")
        except Exception as exc:  # every failure is an answer, not a crash
            text = ("%s: %s" % (type(exc).__name__, exc)).replace("\n", " ")
            out.write("ERR " + text + "\n")
        out.flush()


if __name__ == "__main__":
    main()
