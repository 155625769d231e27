"""Data of the nids plugin: the NF-v2 schema, the CSV loader, preprocessing, windows, the
synthetic generator, the pcap aggregator and the shipped NF-synth dataset."""
