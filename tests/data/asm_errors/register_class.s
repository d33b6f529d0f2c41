	add r3, cr1, r4
	cmpw r3, r4, r5, r6
	mr r3, r32
