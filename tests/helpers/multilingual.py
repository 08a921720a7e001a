"""Short image-caption-like sentences in 16 languages: the default fixture for every test.

They mix Latin with Cyrillic, Greek, Arabic and Hebrew (right to left), Devanagari, Thai and
Japanese (no spaces between words), Chinese, Korean, Ethiopic and combining marks (Vietnamese
and Devanagari), because a multilingual toolkit that only sees English in its tests is not.
"""

CAPTIONS: dict[str, list[str]] = {
    "en": [
        "A brown dog runs across the green grass.",
        "Two children play football on the beach.",
        "A woman in a red coat rides a bicycle.",
        "A small cat sleeps on the wooden table.",
        "An old man reads a newspaper in the park.",
        "Three red apples lie in a blue bowl.",
    ],
    "de": [
        "Ein brauner Hund läuft über das grüne Gras.",
        "Zwei Kinder spielen Fußball am Strand.",
        "Eine Frau in einem roten Mantel fährt Fahrrad.",
        "Eine kleine Katze schläft auf dem Holztisch.",
        "Ein alter Mann liest im Park eine Zeitung.",
        "Drei rote Äpfel liegen in einer blauen Schüssel.",
    ],
    "fr": [
        "Un chien brun court sur l'herbe verte.",
        "Deux enfants jouent au football sur la plage.",
        "Une femme en manteau rouge fait du vélo.",
        "Un petit chat dort sur la table en bois.",
        "Un vieil homme lit le journal dans le parc.",
        "Trois pommes rouges sont dans un bol bleu.",
    ],
    "cs": [
        "Hnědý pes běží po zelené trávě.",
        "Dvě děti hrají fotbal na pláži.",
        "Žena v červeném kabátě jede na kole.",
        "Malá kočka spí na dřevěném stole.",
        "Starý muž čte noviny v parku.",
        "Tři červená jablka leží v modré míse.",
    ],
    "ru": [
        "Коричневая собака бежит по зелёной траве.",
        "Двое детей играют в футбол на пляже.",
        "Женщина в красном пальто едет на велосипеде.",
        "Маленькая кошка спит на деревянном столе.",
        "Пожилой мужчина читает газету в парке.",
        "Три красных яблока лежат в синей миске.",
    ],
    "el": [
        "Ένας καφέ σκύλος τρέχει στο πράσινο γρασίδι.",
        "Δύο παιδιά παίζουν ποδόσφαιρο στην παραλία.",
        "Μια γυναίκα με κόκκινο παλτό κάνει ποδήλατο.",
        "Μια μικρή γάτα κοιμάται στο ξύλινο τραπέζι.",
        "Ένας ηλικιωμένος διαβάζει εφημερίδα στο πάρκο.",
        "Τρία κόκκινα μήλα βρίσκονται σε ένα μπλε μπολ.",
    ],
    "ar": [
        "كلب بني يركض على العشب الأخضر.",
        "طفلان يلعبان كرة القدم على الشاطئ.",
        "امرأة ترتدي معطفا أحمر تركب دراجة.",
        "قطة صغيرة تنام على الطاولة الخشبية.",
        "رجل عجوز يقرأ الجريدة في الحديقة.",
        "ثلاث تفاحات حمراء في وعاء أزرق.",
    ],
    "he": [
        "כלב חום רץ על הדשא הירוק.",
        "שני ילדים משחקים כדורגל על החוף.",
        "אישה במעיל אדום רוכבת על אופניים.",
        "חתול קטן ישן על שולחן העץ.",
        "איש זקן קורא עיתון בפארק.",
        "שלושה תפוחים אדומים בקערה כחולה.",
    ],
    "hi": [
        "एक भूरा कुत्ता हरी घास पर दौड़ रहा है।",
        "दो बच्चे समुद्र तट पर फुटबॉल खेल रहे हैं।",
        "लाल कोट पहने एक महिला साइकिल चला रही है।",
        "एक छोटी बिल्ली लकड़ी की मेज़ पर सो रही है।",
        "एक बूढ़ा आदमी पार्क में अख़बार पढ़ रहा है।",
        "नीले कटोरे में तीन लाल सेब रखे हैं।",
    ],
    "th": [
        "สุนัขสีน้ำตาลวิ่งบนหญ้าสีเขียว",
        "เด็กสองคนเล่นฟุตบอลบนชายหาด",
        "ผู้หญิงใส่เสื้อโค้ทสีแดงขี่จักรยาน",
        "แมวตัวเล็กนอนหลับบนโต๊ะไม้",
        "ชายชราอ่านหนังสือพิมพ์ในสวนสาธารณะ",
        "แอปเปิ้ลสีแดงสามลูกอยู่ในชามสีฟ้า",
    ],
    "ja": [
        "茶色の犬が緑の芝生の上を走っている。",
        "二人の子供が浜辺でサッカーをしている。",
        "赤いコートを着た女性が自転車に乗っている。",
        "小さな猫が木のテーブルの上で眠っている。",
        "老人が公園で新聞を読んでいる。",
        "青いボウルに赤いリンゴが三つある。",
    ],
    "zh": [
        "一只棕色的狗在绿色的草地上奔跑。",
        "两个孩子在海滩上踢足球。",
        "一位穿红色外套的女士在骑自行车。",
        "一只小猫在木桌上睡觉。",
        "一位老人在公园里看报纸。",
        "蓝色的碗里有三个红苹果。",
    ],
    "ko": [
        "갈색 개가 푸른 잔디 위를 달린다.",
        "두 아이가 해변에서 축구를 한다.",
        "빨간 코트를 입은 여자가 자전거를 탄다.",
        "작은 고양이가 나무 탁자 위에서 잔다.",
        "노인이 공원에서 신문을 읽는다.",
        "파란 그릇에 빨간 사과 세 개가 있다.",
    ],
    "am": [
        "ቡናማ ውሻ በአረንጓዴ ሣር ላይ ይሮጣል።",
        "ሁለት ልጆች በባሕር ዳርቻ ኳስ ይጫወታሉ።",
        "ቀይ ኮት የለበሰች ሴት ብስክሌት ትነዳለች።",
        "ትንሽ ድመት በእንጨት ጠረጴዛ ላይ ትተኛለች።",
        "አንድ ሽማግሌ በፓርኩ ውስጥ ጋዜጣ ያነባል።",
        "በሰማያዊ ሳህን ውስጥ ሦስት ቀይ ፖሞች አሉ።",
    ],
    "vi": [
        "Một con chó nâu chạy trên bãi cỏ xanh.",
        "Hai đứa trẻ chơi bóng đá trên bãi biển.",
        "Một người phụ nữ mặc áo khoác đỏ đạp xe.",
        "Một con mèo nhỏ ngủ trên bàn gỗ.",
        "Một ông già đọc báo trong công viên.",
        "Ba quả táo đỏ nằm trong một cái bát xanh.",
    ],
    "tr": [
        "Kahverengi bir köpek yeşil çimenlerde koşuyor.",
        "İki çocuk sahilde futbol oynuyor.",
        "Kırmızı paltolu bir kadın bisiklet sürüyor.",
        "Küçük bir kedi ahşap masanın üstünde uyuyor.",
        "Yaşlı bir adam parkta gazete okuyor.",
        "Mavi bir kasede üç kırmızı elma var.",
    ],
}

ALL_CAPTIONS: list[str] = [caption for captions in CAPTIONS.values() for caption in captions]
