package source

// ReadsDirectly reports whether an RTMP stream reads its connection with the package's own
// chunk parser (the direct path) rather than through gortmplib's reader.
func ReadsDirectly(st Stream) bool {
	s, ok := st.(*rtmpStream)
	return ok && s.direct != nil
}

// ReleasedSetup reports whether an RTMP stream on the direct path dropped gortmplib's client
// and reader.
func ReleasedSetup(st Stream) bool {
	s, ok := st.(*rtmpStream)
	return ok && s.direct != nil && s.reader == nil && s.client == nil && s.gc.client == nil
}
