	.rept -1
	nop
	.endr
	.irp
	.endr
	.endr
	.irp r, 1, 2
	li \r, 0x10000
	.endr
	.rept 2
	nop
