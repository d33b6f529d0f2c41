	.incbin "no_such.bin"
	.incbin nofile
	.incbin "incbin_sections.bin", 2, 3
	.text 1
	.pushsection
