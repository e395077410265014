print(type(_G), _G._G == _G, type(package), type(require), type(debug))
