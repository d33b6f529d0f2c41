start:	nop
start:	nop
	bne 1b
