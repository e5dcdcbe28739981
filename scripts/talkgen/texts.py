"""Built-in sentences and espeak-ng voices."""

# Varied English sentences: meeting talk (the product's setting), numbers, questions, lists,
# plosives and fricatives, long and short vowels. Index = --text-id.
SENTENCES = [
    "Good morning everyone, thanks for joining the call on such short notice.",
    "Please approve the quarterly budget before Friday afternoon.",
    "Can you hear me clearly, or should I switch to my other microphone?",
    "The wire transfer of four hundred and twenty thousand dollars needs your signature today.",
    "Let's move on to the next item on the agenda.",
    "I think the numbers for March look much better than we expected.",
    "Could you share your screen so we can all see the spreadsheet?",
    "We should hire two more engineers for the platform team this summer.",
    "My video keeps freezing, so I will turn the camera off for a minute.",
    "The auditors arrive on Tuesday, and they want every invoice from last year.",
    "Sorry, I was on mute. What I said was that the vendor agreed to the new terms.",
    "Please send the password to my personal email address instead.",
    "Bob bought a big blue boat, but the weather was bad all week.",
    "She sells fresh fish at the seashore every Saturday morning.",
    "Peter picked six pickled peppers and put them in a paper bag.",
    "We will review the contract, sign it, and return it by noon.",
    "Our customers in Japan, Brazil and Kenya reported the same problem.",
    "Why did the shipment leave the warehouse three days late?",
    "Honestly, I don't remember agreeing to that deadline at all.",
    "The new office opens in October, right next to the train station.",
    "Remember to lock your laptop whenever you leave your desk.",
    "Let me check my notes, one moment please.",
    "The board meets again on the twenty-first of November.",
    "Yes, absolutely, that works for me and for my team.",
    "We lost about twelve percent of our traffic after the outage.",
    "A warm cup of coffee always helps on a cold and rainy Monday.",
    "Who is responsible for the backup of the payroll database?",
    "Thank you all for your time, and have a wonderful weekend.",
    "Open the window, the room is getting far too warm in here.",
    "The quick brown fox jumps over the lazy dog near the old mill.",
]

# espeak-ng voices (language + optional variant) chosen by the seed unless --voice is given.
# Only voices that ship with Debian's espeak-ng-data (no MBROLA).
VOICES = [
    "en-us", "en-us+f3", "en-us+m3", "en-us+f2", "en-us+m7",
    "en-gb", "en-gb+f4", "en-gb+m1",
    "en-gb-x-rp", "en-gb-x-rp+f1",
    "en-gb-scotland", "en-gb-scotland+f5",
    "en-gb-x-gbclan+m4", "en-gb-x-gbcwmd+f3",
    "en-029+m2", "en-us-nyc+m5",
    "en+m3", "en+f3",
]

# Short phrases that fill the remaining time of a --seconds clip when no full sentence fits.
FILLERS = [
    "Okay.", "Right, thanks.", "Yes, exactly.", "Hmm, let me think.", "Sure.", "Got it.",
    "No problem.", "Good point.", "Sounds good to me.", "Agreed.", "One second.", "Thank you.",
]
