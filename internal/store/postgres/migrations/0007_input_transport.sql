-- Extension: StreamInput.Transport (rtsp over tcp or udp); empty means the type's default.
ALTER TABLE jobs ADD COLUMN input_transport TEXT NOT NULL DEFAULT '';
