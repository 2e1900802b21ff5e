"""A TLS check endpoint in the test's own process, for the TLS check tests
(test_check_tls_reload, test_check_tls_client_cert): answers every request
with 200 over TLS, then closes, as Patroni's REST API does; with `client_ca`
it refuses clients without a certificate of that CA, as Patroni with
`restapi: verify_client: required`, and remembers the last one it saw; with
`patroni_version`, GET /patroni answers Patroni's status with that version.
Certificates come from the `openssl` command (the tests skip without it)."""
import hashlib
import os
import socket
import ssl
import subprocess
import threading


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(directory, name):
    """A self-signed certificate for localhost and 127.0.0.1: (key path, cert path)."""
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return key, cert


class TlsEndpoint:
    def __init__(self, key, cert, client_ca=None, patroni_version=None):
        """`patroni_version`: GET /patroni answers Patroni's status with it."""
        self.patroni_version = patroni_version
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if client_ca:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(client_ca)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.lock = threading.Lock()
        self.last_client = None  # sha256 of the last client certificate served
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                peer = s.getpeercert(binary_form=True)
                if peer:
                    with self.lock:
                        self.last_client = hashlib.sha256(peer).hexdigest()
                body = b"{}"
                if self.patroni_version and data.split(b" ", 2)[1:2] == [b"/patroni"]:
                    body = b'{"state": "running", "role": "primary", "patroni": {"version": "%s"}}' % \
                        self.patroni_version.encode()
                s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (OSError, ssl.SSLError):
            pass

    def seen(self):
        with self.lock:
            return self.last_client

    def close(self):
        self.stopped = True
        self.sock.close()
