#!/usr/bin/python3
"""A live RTSP server for livesnap's tests (gst-rtsp-server through PyGObject).

Serves a Matroska file at rtsp://127.0.0.1:PORT/live in real time, one pipeline per client,
from the start of the file. Video: H.264 or H.265 as in the file; audio (AAC) when the file
has it and --no-audio is not given. Prints READY when it listens.

usage: rtsp_server.py PORT FILE CODEC(h264|h265|none) [--audio]
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port, path, codec = sys.argv[1], sys.argv[2], sys.argv[3]
    audio = "--audio" in sys.argv[4:]
    Gst.init(None)
    branches, pay = [], 0
    if codec in ("h264", "h265"):
        branches.append(
            f"d.video_0 ! queue ! {codec}parse config-interval=-1 ! rtp{codec}pay name=pay{pay} pt={96 + pay} config-interval=-1"
        )
        pay += 1
    if audio:
        branches.append(f"d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay{pay} pt={96 + pay}")
    launch = f"( filesrc location={path} ! matroskademux name=d " + " ".join(branches) + " )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        print("cannot listen", file=sys.stderr)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
